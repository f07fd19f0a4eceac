//! One cart's line writes (add, set quantity, remove): queued in this instance, they commit together.
//!
//! Every write to a cart raises its revision, so one cart's writes take turns (`turns`). Taking
//! turns alone, 32 writers on one cart wait for 31 transactions each, and every transaction reads
//! the whole cart back for its answer. Here a writer queues its write and a task takes the cart's
//! turn; whichever task holds the turn runs everything queued for the cart by then, in order, as one
//! transaction (one block per write, each seeing the writes before it), raises the cart's revision
//! once and reads the cart back once for all of them. A write whose task finds the queue empty was
//! run by an earlier holder. Each write still gets its own outcome: one that is refused (no such
//! variant, line limit) changes nothing and the others go ahead; a failed transaction fails every
//! write in it, and a write conflict (another instance wrote the cart) runs the whole batch again.
//!
//! The task, not the request, runs the batch: a client that hangs up does not cancel the writes of
//! the others queued with it.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use surrealdb::types::SurrealValue;
use tokio::sync::oneshot;

use super::carts::{
    AddOutcome, CartSnapshot, LineRow, cart_lines_of, next_revision, rows, select_lines,
};
use super::{Store, StoreError};
use crate::domain::{CartOwner, VariantId};
use crate::sync::lock;

/// The most writes one transaction runs; the rest wait for the next turn.
const MOST_PER_BATCH: usize = 64;

/// A write to one line of a cart.
#[derive(Debug, Clone, Copy)]
pub(crate) enum LineWrite {
    /// Raise the variant's line by `quantity` (make it), refused past `max_line` units.
    Add {
        variant_id: i64,
        quantity: i64,
        max_line: i64,
    },
    /// Set an existing line's quantity.
    Set { variant_id: i64, quantity: i64 },
    /// Delete an existing line.
    Remove { variant_id: i64 },
}

/// What one write did.
#[derive(Debug)]
pub(crate) enum Written {
    /// The cart changed; its lines as they are after the transaction that changed it.
    Changed(CartSnapshot),
    /// `Set` or `Remove` found no line for the variant.
    NoLine,
    /// `Add`: the variant does not exist or is archived, or its product is.
    NoProduct,
    /// `Add`: the line would hold more than `max_line`.
    TooMany,
}

/// A write as the batch's SurrealQL reads it (`$ops[i]`; which write it is, is its block).
#[derive(Debug, Clone, SurrealValue)]
struct Op {
    variant_id: i64,
    quantity: Option<i64>,
    max_line: Option<i64>,
}

impl Op {
    fn of(write: LineWrite) -> Self {
        let (variant_id, quantity, max_line) = match write {
            LineWrite::Add {
                variant_id,
                quantity,
                max_line,
            } => (variant_id, Some(quantity), Some(max_line)),
            LineWrite::Set {
                variant_id,
                quantity,
            } => (variant_id, Some(quantity), None),
            LineWrite::Remove { variant_id } => (variant_id, None, None),
        };
        Self {
            variant_id,
            quantity,
            max_line,
        }
    }
}

struct Queued {
    write: LineWrite,
    /// A guest cart's new idle deadline; none for an account's cart.
    expires: Option<DateTime<Utc>>,
    done: oneshot::Sender<Result<Written, StoreError>>,
}

/// Writes waiting for their cart's turn, by cart key.
#[derive(Default)]
pub(crate) struct CartQueue {
    waiting: Mutex<HashMap<String, Vec<Queued>>>,
}

impl CartQueue {
    fn push(&self, cart: &str, queued: Queued) {
        lock(&self.waiting)
            .entry(cart.to_string())
            .or_default()
            .push(queued);
    }

    #[cfg(test)]
    pub(crate) fn len(&self, cart: &str) -> usize {
        lock(&self.waiting).get(cart).map_or(0, Vec::len)
    }

    /// Up to `MOST_PER_BATCH` of the cart's writes, oldest first.
    fn take(&self, cart: &str) -> Vec<Queued> {
        let mut waiting = lock(&self.waiting);
        let Some(queue) = waiting.get_mut(cart) else {
            return Vec::new();
        };
        if queue.len() <= MOST_PER_BATCH {
            return waiting.remove(cart).unwrap_or_default();
        }
        queue.drain(..MOST_PER_BATCH).collect()
    }
}

/// Each write's block: its value is its outcome (`RETURN` would end the whole transaction). `$op`
/// is the write, `$cart` the cart record, `$user` its key. Only the lines are written here; the
/// cart record once, after them (`AFTER`).
const ADD: &str = "LET $variant = type::record('variant', $op.variant_id);
    -- Field idioms read a record without a SELECT's planning; a missing record reads as NONE.
    LET $v = $variant.{archived, price, product};
    LET $found = $v.product.{archived, price};
    LET $line = type::record('cart_line', [$user, $op.variant_id]);
    LET $current = $line.quantity ?? 0;
    IF $v.product = NONE OR $v.archived = true OR $found.price = NONE OR $found.archived = true {
        'no_product'
    } ELSE IF $current + $op.quantity > $op.max_line {
        'too_many'
    } ELSE {
        UPSERT $line SET cart = $cart, product = $v.product, variant = $variant,
            quantity = $current + $op.quantity, price_when_added = $v.price ?? $found.price;
        'changed'
    }";

const SET: &str = "LET $line = type::record('cart_line', [$user, $op.variant_id]);
    IF !record::exists($line) { 'no_line' } ELSE {
        UPDATE $line SET quantity = $op.quantity;
        'changed'
    }";

const REMOVE: &str = "LET $line = type::record('cart_line', [$user, $op.variant_id]);
    IF !record::exists($line) { 'no_line' } ELSE {
        DELETE $line;
        'changed'
    }";

/// After the writes: when one changed the cart, its revision is raised once for the transaction
/// (and a guest cart's idle deadline moved on, an account's cart tied to its user); then the cart
/// as the batch leaves it, read once, its lines only when it changed.
const AFTER: &str = concat!(
    "IF 'changed' IN $outcomes {
        LET $revision = ",
    next_revision!("$cart"),
    ";
        IF $expires != NONE { UPSERT $cart SET expires_at = $expires, revision = $revision }
        ELSE { UPSERT $cart SET user = type::record('user', $user), revision = $revision };
    };
    RETURN { outcomes: $outcomes, revision: $cart.revision ?? 0,
        lines: IF 'changed' IN $outcomes { ",
    select_lines!(),
    " } ELSE { [] } };"
);

impl LineWrite {
    fn block(&self) -> &'static str {
        match self {
            LineWrite::Add { .. } => ADD,
            LineWrite::Set { .. } => SET,
            LineWrite::Remove { .. } => REMOVE,
        }
    }
}

/// One transaction running `writes` in order: `LET $w0 = { LET $op = $ops[0]; … };` per write.
fn batch_text(writes: &[LineWrite]) -> String {
    let mut text = String::from("{\nLET $cart = type::record('cart', $user);\n");
    for (i, write) in writes.iter().enumerate() {
        let _ = writeln!(
            text,
            "LET $w{i} = {{ LET $op = $ops[{i}];\n{} }};",
            write.block()
        );
    }
    let outcomes: Vec<String> = (0..writes.len()).map(|i| format!("$w{i}")).collect();
    let _ = writeln!(text, "LET $outcomes = [{}];", outcomes.join(", "));
    text.push_str(AFTER);
    text.push_str("\n}");
    text
}

#[derive(Debug, SurrealValue)]
struct BatchResult {
    outcomes: Vec<String>,
    revision: i64,
    lines: Vec<LineRow>,
}

/// A set-quantity or remove: the cart after it, or none when it had no such line.
fn changed_or_no_line(written: Written, what: &str) -> Result<Option<CartSnapshot>, StoreError> {
    match written {
        Written::Changed(snapshot) => Ok(Some(snapshot)),
        Written::NoLine => Ok(None),
        other => Err(StoreError::UnknownOutcome(format!("{what}: {other:?}"))),
    }
}

impl Store {
    /// Adds `quantity` of a variant, raising the line's quantity when the variant is already there.
    /// `guest_expiry` is set for a guest cart: its new idle deadline. Queued with the cart's other
    /// writes (`cart_writes`).
    pub async fn add_to_cart(
        &self,
        cart: &CartOwner,
        guest_expiry: Option<DateTime<Utc>>,
        variant_id: VariantId,
        quantity: i64,
        max_line: i64,
    ) -> Result<AddOutcome, StoreError> {
        let write = LineWrite::Add {
            variant_id: variant_id.get(),
            quantity,
            max_line,
        };
        match self
            .write_cart_line(cart.key(), guest_expiry, write)
            .await?
        {
            Written::Changed(snapshot) => Ok(AddOutcome::Added(snapshot)),
            Written::NoProduct => Ok(AddOutcome::NoProduct),
            Written::TooMany => Ok(AddOutcome::TooMany),
            Written::NoLine => Err(StoreError::UnknownOutcome("add: no line".into())),
        }
    }

    /// Sets a line's quantity and returns the cart's lines; none when the cart has no line for that
    /// variant. `guest_expiry` as for `add_to_cart`.
    pub async fn set_cart_quantity(
        &self,
        cart: &CartOwner,
        guest_expiry: Option<DateTime<Utc>>,
        variant_id: VariantId,
        quantity: i64,
    ) -> Result<Option<CartSnapshot>, StoreError> {
        let write = LineWrite::Set {
            variant_id: variant_id.get(),
            quantity,
        };
        let written = self
            .write_cart_line(cart.key(), guest_expiry, write)
            .await?;
        changed_or_no_line(written, "set quantity")
    }

    /// Removes a line and returns the cart's lines; none when the cart has no line for that variant.
    /// `guest_expiry` as for `add_to_cart`.
    pub async fn remove_cart_line(
        &self,
        cart: &CartOwner,
        guest_expiry: Option<DateTime<Utc>>,
        variant_id: VariantId,
    ) -> Result<Option<CartSnapshot>, StoreError> {
        let write = LineWrite::Remove {
            variant_id: variant_id.get(),
        };
        let written = self
            .write_cart_line(cart.key(), guest_expiry, write)
            .await?;
        changed_or_no_line(written, "remove")
    }

    /// Queues `write` for `cart` (a user's id or a guest cart's key) and waits for the transaction
    /// that runs it. `expires` is set for a guest cart: its new idle deadline.
    pub(crate) async fn write_cart_line(
        &self,
        cart: &str,
        expires: Option<DateTime<Utc>>,
        write: LineWrite,
    ) -> Result<Written, StoreError> {
        let (done, answer) = oneshot::channel();
        self.cart_queue.push(
            cart,
            Queued {
                write,
                expires,
                done,
            },
        );
        let store = self.clone();
        let cart = cart.to_string();
        tokio::spawn(async move {
            let _turn = store.cart_turns.take(&[cart.as_str()]).await;
            let batch = store.cart_queue.take(&cart);
            if !batch.is_empty() {
                store.run_batch(&cart, batch).await;
            }
        });
        answer.await.unwrap_or_else(|_| {
            Err(StoreError::Database(surrealdb::Error::internal(
                "the cart write's task ended without an answer".into(),
            )))
        })
    }

    /// Runs `batch` (in the cart's turn) and answers each write.
    async fn run_batch(&self, cart: &str, batch: Vec<Queued>) {
        let writes: Vec<LineWrite> = batch.iter().map(|q| q.write).collect();
        let ops: Vec<Op> = writes.iter().copied().map(Op::of).collect();
        // The latest deadline: the writes of one cart are all a guest's, or all an account's.
        let expires = batch.iter().filter_map(|q| q.expires).max();
        let text = batch_text(&writes);
        let result = self
            .retry_on_conflict(|| async {
                let mut response = self
                    .db()
                    .query(text.as_str())
                    .bind(("user", cart.to_string()))
                    .bind(("ops", ops.clone()))
                    .bind(("expires", expires))
                    .await?;
                let result: Option<BatchResult> = response.take(0)?;
                result.ok_or_else(|| StoreError::UnknownOutcome("a cart write: nothing".into()))
            })
            .await
            .and_then(|result| {
                if result.outcomes.len() == batch.len() {
                    Ok(result)
                } else {
                    Err(StoreError::UnknownOutcome(format!(
                        "{} outcomes for {} cart writes",
                        result.outcomes.len(),
                        batch.len()
                    )))
                }
            });
        match result {
            Ok(BatchResult {
                outcomes,
                revision,
                lines,
            }) => {
                self.metrics.cart_writes_committed(batch.len() as u64);
                let after = CartSnapshot {
                    revision,
                    lines: rows(lines),
                };
                for (queued, outcome) in batch.into_iter().zip(outcomes) {
                    let written = match outcome.as_str() {
                        "changed" => Ok(Written::Changed(after.clone())),
                        "no_line" => Ok(Written::NoLine),
                        "no_product" => Ok(Written::NoProduct),
                        "too_many" => Ok(Written::TooMany),
                        other => Err(StoreError::UnknownOutcome(other.to_string())),
                    };
                    // A writer that stopped waiting (its client hung up) needs no answer.
                    let _ = queued.done.send(written);
                }
            }
            Err(err) => {
                for queued in batch {
                    let _ = queued.done.send(Err(err.clone()));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_runs_its_writes_in_order_and_reads_the_cart_once() {
        let add = LineWrite::Add {
            variant_id: 7,
            quantity: 2,
            max_line: 99,
        };
        let remove = LineWrite::Remove { variant_id: 7 };
        let text = batch_text(&[add, remove]);
        let first = text.find("LET $w0 = { LET $op = $ops[0];").unwrap();
        let second = text.find("LET $w1 = { LET $op = $ops[1];").unwrap();
        assert!(first < second && text[first..second].contains("'too_many'"));
        assert!(text[second..].contains("DELETE $line"));
        assert!(text.contains("LET $outcomes = [$w0, $w1];"));
        // The cart record (its revision) is written once for the batch, in one of two branches.
        assert_eq!(text.matches("UPSERT $cart").count(), 2, "{text}");
        assert_eq!(text.matches("FROM cart_line:").count(), 1, "{text}");
        assert_eq!(
            text.matches("RETURN").count(),
            1,
            "a write's RETURN would end the batch"
        );
    }
}
