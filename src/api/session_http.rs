//! How sessions travel over HTTP: the bearer/cookie security schemes, the session cookies, and the
//! client's address.

use std::sync::Arc;
use std::time::Duration;

use poem::web::cookie::{Cookie, CookieJar, SameSite as CookieSameSite};
use poem::{FromRequest, Request, RequestBody};
use poem_openapi::SecurityScheme;
use poem_openapi::auth::{ApiKey, Bearer};

use super::problem::ApiError;
use crate::auth::{Admin, ClientInfo, Principal, SessionService, TokenPair};
use crate::config::{CookieSettings, SameSite};
use crate::domain::{CartOwner, GuestCartId};
use crate::error::Error;

pub const ACCESS_COOKIE: &str = "sf_access";
pub const REFRESH_COOKIE: &str = "sf_refresh";
pub const CART_COOKIE: &str = "sf_cart";
pub const CART_HEADER: &str = "X-Cart-Token";

fn session_service(req: &Request) -> poem::Result<&Arc<SessionService>> {
    req.data::<Arc<SessionService>>().ok_or_else(|| {
        ApiError::from(Error::Internal(anyhow::anyhow!("session service missing"))).into()
    })
}

/// The access token a request presents, by the one rule both surfaces (v1 and legacy) follow: an
/// `Authorization` header, when there is one, is the credential, and the `sf_access` cookie is then
/// ignored (so a request carrying a cookie for one user and a bearer token for another is answered as
/// the bearer's, everywhere); without the header, the cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessToken {
    Bearer(String),
    Cookie(String),
    /// An `Authorization` header that is not `Bearer <token>`: refused, never replaced by the cookie.
    Malformed,
}

pub fn access_token(req: &Request) -> Option<AccessToken> {
    if let Some(header) = req
        .headers()
        .get(poem::http::header::AUTHORIZATION)
        .filter(|v| !v.is_empty())
    {
        let bearer = header
            .to_str()
            .ok()
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .filter(|token| !token.is_empty());
        return Some(bearer.map_or(AccessToken::Malformed, |t| AccessToken::Bearer(t.into())));
    }
    req.cookie()
        .get(ACCESS_COOKIE)
        .map(|c| c.value_str().to_string())
        .filter(|v| !v.is_empty())
        .map(AccessToken::Cookie)
}

/// The principal behind an access token the request presented (`access_token` picks which).
pub async fn authenticate(req: &Request, token: &AccessToken) -> Result<Principal, Error> {
    match token {
        AccessToken::Bearer(token) | AccessToken::Cookie(token) => {
            session_service(req)
                .map_err(|_| Error::Internal(anyhow::anyhow!("session service missing")))?
                .authenticate(token)
                .await
        }
        AccessToken::Malformed => Err(Error::InvalidToken),
    }
}

/// Both security schemes check the credential the rule picks, so the cookie scheme never answers for
/// a request whose `Authorization` header failed.
async fn check_access(req: &Request, scheme: fn(&AccessToken) -> bool) -> poem::Result<Principal> {
    match access_token(req) {
        Some(token) if scheme(&token) => authenticate(req, &token)
            .await
            .map_err(|e| ApiError::from(e).into()),
        _ => Err(ApiError::from(Error::InvalidToken).into()),
    }
}

async fn check_bearer(req: &Request, _: Bearer) -> poem::Result<Principal> {
    check_access(req, |t| matches!(t, AccessToken::Bearer(_))).await
}

async fn check_cookie(req: &Request, _: ApiKey) -> poem::Result<Principal> {
    check_access(req, |t| matches!(t, AccessToken::Cookie(_))).await
}

/// `Authorization: Bearer <access token>`. When this header is present it is the credential, and
/// the `sf_access` cookie is not looked at.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", bearer_format = "JWT", checker = "check_bearer")]
pub struct BearerAuth(Principal);

/// The HttpOnly `sf_access` cookie set at login, for browsers; used when no `Authorization` header
/// comes.
#[derive(SecurityScheme)]
#[oai(
    ty = "api_key",
    key_in = "cookie",
    key_name = "sf_access",
    checker = "check_cookie"
)]
pub struct CookieAuth(Principal);

/// Either credential; every authenticated operation accepts both. The header wins over the cookie by
/// the checkers (`access_token`), not by this order: the cookie is tried first so that a failed
/// bearer's `invalid_token` is the error a client sees (the last one tried).
#[derive(SecurityScheme)]
pub enum Auth {
    Cookie(CookieAuth),
    Bearer(BearerAuth),
}

fn guest_cart(req: &Request, token: &str) -> poem::Result<CartOwner> {
    session_service(req)?
        .guest_cart(token)
        .map(CartOwner::Guest)
        .ok_or_else(|| ApiError::from(Error::InvalidToken).into())
}

/// A cart token stands for the caller only when no `Authorization` header came: a request whose
/// header failed is refused, not answered as the guest cart (the client should refresh).
async fn check_cart_token(req: &Request, key: ApiKey) -> poem::Result<CartOwner> {
    match access_token(req) {
        Some(AccessToken::Bearer(_) | AccessToken::Malformed) => {
            Err(ApiError::from(Error::InvalidToken).into())
        }
        _ => guest_cart(req, &key.key),
    }
}

/// A guest cart's token in the `X-Cart-Token` header (from `POST /api/v1/cart`).
#[derive(SecurityScheme)]
#[oai(
    ty = "api_key",
    key_in = "header",
    key_name = "X-Cart-Token",
    checker = "check_cart_token"
)]
pub struct CartHeaderAuth(CartOwner);

/// A guest cart's token in the HttpOnly `sf_cart` cookie set by `POST /api/v1/cart`.
#[derive(SecurityScheme)]
#[oai(
    ty = "api_key",
    key_in = "cookie",
    key_name = "sf_cart",
    checker = "check_cart_token"
)]
pub struct CartCookieAuth(CartOwner);

/// Whose cart: a signed-in user's (either credential, tried first) or a guest cart's (its token).
/// Nothing valid may come too (`Nobody`): starting a cart needs no credential, and the other cart
/// routes then answer 401 through `owner`.
#[derive(SecurityScheme)]
pub enum CartAuth {
    Cookie(CookieAuth),
    Bearer(BearerAuth),
    CartHeader(CartHeaderAuth),
    CartCookie(CartCookieAuth),
    #[oai(fallback)]
    Nobody,
}

impl CartAuth {
    fn presented(&self) -> Option<CartOwner> {
        match self {
            CartAuth::Bearer(BearerAuth(p)) | CartAuth::Cookie(CookieAuth(p)) => Some(p.into()),
            CartAuth::CartHeader(CartHeaderAuth(o)) | CartAuth::CartCookie(CartCookieAuth(o)) => {
                Some(o.clone())
            }
            CartAuth::Nobody => None,
        }
    }

    /// The cart's owner. None valid: 401, `invalid_token` when a credential or cart token was sent
    /// (so a client knows to refresh), `unauthenticated` when nothing was.
    pub fn owner(&self, req: &Request) -> Result<CartOwner, Error> {
        match self.presented() {
            Some(owner) => Ok(owner),
            None if sent_credentials(req) => Err(Error::InvalidToken),
            None => Err(Error::Unauthenticated),
        }
    }

    /// For starting a cart: `None` when no valid cart token or credential came (a new guest cart is
    /// due, replacing a stale `sf_cart` cookie a browser could not clear itself); 401 when a user
    /// credential came and failed (the client should refresh, not lose the account's cart).
    pub fn maybe_owner(&self, req: &Request) -> Result<Option<CartOwner>, Error> {
        match self.presented() {
            Some(owner) => Ok(Some(owner)),
            None if sent(
                req,
                poem::http::header::AUTHORIZATION.as_str(),
                ACCESS_COOKIE,
            ) =>
            {
                Err(Error::InvalidToken)
            }
            None => Ok(None),
        }
    }
}

/// Whether the request carries any credential or cart token, valid or not.
fn sent_credentials(req: &Request) -> bool {
    sent(
        req,
        poem::http::header::AUTHORIZATION.as_str(),
        ACCESS_COOKIE,
    ) || sent(req, CART_HEADER, CART_COOKIE)
}

/// Whether the request carries a non-empty `header` or `cookie`.
fn sent(req: &Request, header: &str, cookie: &str) -> bool {
    req.headers().get(header).is_some_and(|v| !v.is_empty())
        || req
            .cookie()
            .get(cookie)
            .is_some_and(|c| !c.value_str().is_empty())
}

/// The guest cart a request names (header first, then cookie), if its token is genuine: what a
/// sign-in merges into the account's cart.
pub struct GuestCart(pub Option<GuestCartId>);

impl<'a> FromRequest<'a> for GuestCart {
    async fn from_request(req: &'a Request, _body: &mut RequestBody) -> poem::Result<Self> {
        let sessions = session_service(req)?;
        let header = req.headers().get(CART_HEADER).and_then(|v| v.to_str().ok());
        let cookie = req.cookie().get(CART_COOKIE);
        let cookie = cookie.as_ref().map(|c| c.value_str());
        Ok(GuestCart(
            header
                .or(cookie)
                .and_then(|token| sessions.guest_cart(token)),
        ))
    }
}

impl Auth {
    pub fn principal(&self) -> &Principal {
        match self {
            Auth::Bearer(BearerAuth(p)) | Auth::Cookie(CookieAuth(p)) => p,
        }
    }

    /// The admin capability, if the principal is an admin; 403 otherwise.
    pub fn admin(&self) -> Result<Admin, Error> {
        self.principal().admin()
    }
}

/// Writes and clears the session cookies with the configured flags.
#[derive(Debug, Clone)]
pub struct SessionCookies {
    settings: CookieSettings,
}

impl SessionCookies {
    pub fn new(settings: CookieSettings) -> Self {
        Self { settings }
    }

    pub fn set(&self, jar: &CookieJar, tokens: &TokenPair) {
        jar.add(self.cookie(ACCESS_COOKIE, &tokens.access_token, tokens.access_ttl));
        jar.add(self.cookie(REFRESH_COOKIE, &tokens.refresh_token, tokens.refresh_ttl));
    }

    pub fn clear(&self, jar: &CookieJar) {
        for name in [ACCESS_COOKIE, REFRESH_COOKIE] {
            jar.add(self.cookie(name, "", Duration::ZERO));
        }
    }

    /// The guest cart's cookie, living as long as the cart may idle.
    pub fn set_cart(&self, jar: &CookieJar, token: &str, ttl: Duration) {
        jar.add(self.cookie(CART_COOKIE, token, ttl));
    }

    pub fn clear_cart(&self, jar: &CookieJar) {
        jar.add(self.cookie(CART_COOKIE, "", Duration::ZERO));
    }

    fn cookie(&self, name: &str, value: &str, max_age: Duration) -> Cookie {
        let mut cookie = Cookie::new_with_str(name, value);
        cookie.set_http_only(true);
        cookie.set_path("/");
        cookie.set_secure(self.settings.secure);
        cookie.set_same_site(match self.settings.same_site {
            SameSite::Strict => CookieSameSite::Strict,
            SameSite::Lax => CookieSameSite::Lax,
            SameSite::None => CookieSameSite::None,
        });
        cookie.set_max_age(max_age);
        cookie
    }
}

/// Which header holds the client's address when a trusted proxy is in front (`CLIENT_IP_HEADER`).
#[derive(Debug, Clone)]
pub struct ClientIpHeader(pub Option<String>);

/// The caller's address and user agent, for rate limits and the session list.
pub struct Client(pub ClientInfo);

impl<'a> FromRequest<'a> for Client {
    async fn from_request(req: &'a Request, _body: &mut RequestBody) -> poem::Result<Self> {
        let header_ip = req
            .data::<ClientIpHeader>()
            .and_then(|h| h.0.as_deref())
            .and_then(|name| req.headers().get(name))
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .and_then(|v| v.trim().parse::<std::net::IpAddr>().ok());
        let ip = header_ip.or_else(|| req.remote_addr().as_socket_addr().map(|a| a.ip()));
        let user_agent = req
            .headers()
            .get(poem::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.chars().take(300).collect());
        Ok(Client(ClientInfo {
            ip: ip.map(|ip| ip.to_string()),
            user_agent,
        }))
    }
}
