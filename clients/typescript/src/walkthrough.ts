// A walk through the Storefront API with a client typed from the served /openapi.json.
//
// `src/schema.d.ts` is generated (scripts/ts-client runs openapi-typescript on the live document), so
// every path, parameter, body and response below is checked against the contract by `tsc --strict`:
// a renamed field, a removed route or a status that became a closed set of other values stops this
// file compiling, and scripts/test fails. It is compiled, never run, in CI; it runs as written in a
// browser (or Node 20+ with an EventSource polyfill) against a server with a seeded catalog.
import createClient, { type Middleware } from "openapi-fetch";
import type { components, paths } from "./schema";

type Product = components["schemas"]["ProductView"];
type Variant = components["schemas"]["VariantView"];

/** An event stream is text (`text/event-stream`); each event's `data` is one of these, as JSON. */
type OrderStatusEvent = components["schemas"]["OrderStatusEvent"];
/** The document types the stream itself as a string, not as an array of events. */
type OrderEventsBody =
  paths["/api/v1/orders/{id}/events"]["get"]["responses"][200]["content"]["text/event-stream"];
const streamIsText: OrderEventsBody extends string ? true : never = true;
void streamIsText;

/** Any error body the client hands back: an RFC 9457 problem for every documented status. */
type ProblemLike = { status?: number; code?: string; detail?: string } | undefined;

function fail(step: string, problem: ProblemLike, response: Response): never {
  throw new Error(
    `${step}: HTTP ${response.status} ${problem?.code ?? ""} ${problem?.detail ?? ""}`.trim(),
  );
}

export async function walkthrough(baseUrl: string): Promise<void> {
  const client = createClient<paths>({ baseUrl, credentials: "include" });

  // The access token from login goes on every later request as `Authorization: Bearer ...`.
  let accessToken: string | undefined;
  const bearer: Middleware = {
    onRequest({ request }) {
      if (accessToken !== undefined) {
        request.headers.set("Authorization", `Bearer ${accessToken}`);
      }
      return request;
    },
  };
  client.use(bearer);

  // 1. Register an account (201 with the user and a first session's tokens).
  const email = `walkthrough-${crypto.randomUUID()}@example.com`;
  const password = "correct horse battery staple";
  const registered = await client.POST("/api/v1/auth/register", {
    body: { email, password, name: "Walk Through", address: "1 Example Street, London" },
  });
  if (registered.error !== undefined) fail("register", registered.error, registered.response);
  console.log(`registered ${registered.data.user.email} (${registered.data.user.role})`);

  // 2. Log in and keep the access token; the middleware sends it from now on.
  const login = await client.POST("/api/v1/auth/login", { body: { email, password } });
  if (login.error !== undefined) fail("login", login.error, login.response);
  accessToken = login.data.tokens.access_token;
  console.log(`signed in, token expires in ${login.data.tokens.expires_in}s`);

  // 3. The categories (a flat list of a two-level tree: a category with a `parent` is under it; the
  //    catalog's `category` filter holds a category's products and its children's), then the
  //    catalog, cheapest first, a page at a time: follow `next_cursor` for up to three pages
  //    (fewer if the last page comes first), and take the first variant on sale that is in stock
  //    (a product without options has exactly one variant; one with options, one per combination).
  const categories = await client.GET("/api/v1/categories");
  if (categories.error !== undefined) fail("categories", categories.error, categories.response);
  for (const top of categories.data.items.filter((c) => c.parent === undefined)) {
    const children = categories.data.items.filter((c) => c.parent === top.slug);
    console.log(`category ${top.name}: ${children.map((c) => c.name).join(", ") || "no children"}`);
  }
  let product: Product | undefined;
  let variant: Variant | undefined;
  let cursor: string | undefined;
  for (let page = 1; page <= 3; page++) {
    const { data, error, response } = await client.GET("/api/v1/products", {
      params: { query: { limit: 5, sort: "price_asc", cursor } },
    });
    if (error !== undefined) fail("catalog page", error, response);
    for (const item of data.items) {
      const price = `${(item.price.amount / 100).toFixed(2)} ${item.price.currency}`;
      const range = `${item.price_range.min.amount}-${item.price_range.max.amount}`;
      const pictures = item.images.map((image) => `${image.url} (${image.alt})`).join(", ");
      const options = item.options.map((o) => `${o.name}: ${o.values.join("/")}`).join("; ");
      console.log(`page ${page}: #${item.id} ${item.name} ${price} (${range}), ${item.stock} in stock ${options} ${pictures}`);
      for (const v of item.variants) {
        const values = Object.entries(v.option_values).map(([name, value]) => `${name}=${value}`);
        console.log(`  variant ${v.sku}: ${values.join(", ") || "default"}, ${v.stock} left`);
      }
    }
    if (product === undefined) {
      product = data.items.find((item) => item.in_stock);
      variant = product?.variants.find((v) => v.available);
    }
    cursor = data.next_cursor;
    if (cursor === undefined) break;
  }
  if (product === undefined || variant === undefined) throw new Error("catalog: nothing in stock");

  // 4. Add one of the variant to the cart (the account's cart: the bearer token says whose). The
  //    product's own page lists the same variants.
  const one = await client.GET("/api/v1/products/{id}", { params: { path: { id: product.id } } });
  if (one.error !== undefined) fail("product", one.error, one.response);
  console.log(`product #${one.data.id}: ${one.data.variants.length} variant(s) on sale`);
  const cart = await client.POST("/api/v1/cart/items", {
    body: { variant_id: variant.id, quantity: 1 },
  });
  if (cart.error !== undefined) fail("add to cart", cart.error, cart.response);
  for (const line of cart.data.items) {
    const warnings = line.warnings.length > 0 ? ` (${line.warnings.join(", ")})` : "";
    const values = Object.values(line.option_values).join("/");
    console.log(`cart: ${line.quantity} x ${line.name} ${line.sku} ${values}${warnings}`);
  }
  console.log(`cart: ${cart.data.item_count} units, subtotal ${cart.data.subtotal.amount}`);

  // 5. Check out with an Idempotency-Key: retrying with the same key cannot place a second order.
  const idempotencyKey = crypto.randomUUID();
  const checkout = await client.POST("/api/v1/orders", {
    params: { header: { "Idempotency-Key": idempotencyKey } },
    body: { shipping_address: "1 Example Street, London" },
  });
  if (checkout.error !== undefined) fail("checkout", checkout.error, checkout.response);
  const order = checkout.data;
  const replayed = checkout.response.headers.get("Idempotency-Replayed") !== null;
  console.log(`order ${order.id}: ${order.status}, ${order.item_count} units${replayed ? " (replayed)" : ""}`);
  for (const line of order.items) console.log(`  ${line.quantity} x ${line.sku} at ${line.unit_price.amount}`);

  // 6. The account's orders, newest first.
  const orders = await client.GET("/api/v1/orders", { params: { query: { limit: 10 } } });
  if (orders.error !== undefined) fail("order list", orders.error, orders.response);
  for (const placed of orders.data.items) {
    const open = placed.status !== "delivered" && placed.status !== "cancelled";
    console.log(`orders: ${placed.id} ${placed.status}${open ? "" : " (closed)"} ${placed.created_at}`);
  }
  if (!orders.data.items.some((placed) => placed.id === order.id)) {
    throw new Error(`order list: ${order.id} is missing`);
  }

  // 7. The order's status as a stream of `status` events. EventSource cannot set headers, so it
  //    authenticates with the HttpOnly access cookie login set (`withCredentials`); it resumes after
  //    a drop with `Last-Event-ID` by itself. Wait for the first event: the status now.
  const eventsPath: keyof paths = "/api/v1/orders/{id}/events";
  const url = new URL(eventsPath.replace("{id}", encodeURIComponent(order.id)), baseUrl);
  const first = await new Promise<OrderStatusEvent>((resolve, reject) => {
    const source = new EventSource(url, { withCredentials: true });
    source.addEventListener("status", (event: MessageEvent<string>) => {
      source.close();
      resolve(JSON.parse(event.data) as OrderStatusEvent);
    });
    source.addEventListener("error", () => {
      source.close();
      reject(new Error(`order events: the stream for ${order.id} failed`));
    });
  });
  console.log(`events: ${first.order_id} is ${first.status} as of ${first.updated_at}`);
}

/** An admin's side of variants: a new size for a product, its stock changed, then withdrawn. */
export async function manageVariants(baseUrl: string, adminToken: string, productId: number): Promise<void> {
  const client = createClient<paths>({ baseUrl, headers: { Authorization: `Bearer ${adminToken}` } });
  const path = { id: productId };
  const added = await client.POST("/api/v1/products/{id}/variants", {
    params: { path },
    body: { sku: `XL-${productId}`, option_values: { Size: "XL" }, stock: 5 },
  });
  if (added.error !== undefined) fail("add variant", added.error, added.response);
  const variant: Variant = added.data;
  const changed = await client.PATCH("/api/v1/products/{id}/variants/{variant_id}", {
    params: { path: { ...path, variant_id: variant.id } },
    body: { stock: 12, price: { amount: 2599, currency: variant.price.currency } },
  });
  if (changed.error !== undefined) fail("change variant", changed.error, changed.response);
  console.log(`variant ${changed.data.sku}: ${changed.data.stock} at ${changed.data.price.amount}`);
  const archived = await client.DELETE("/api/v1/products/{id}/variants/{variant_id}", {
    params: { path: { ...path, variant_id: variant.id } },
  });
  if (archived.error !== undefined) fail("archive variant", archived.error, archived.response);
}
