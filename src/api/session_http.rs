//! How sessions travel over HTTP: the bearer/cookie security schemes, the session cookies, and the
//! client's address.

use std::sync::Arc;
use std::time::Duration;

use poem::web::cookie::{Cookie, CookieJar, SameSite as CookieSameSite};
use poem::{FromRequest, Request, RequestBody};
use poem_openapi::SecurityScheme;
use poem_openapi::auth::{ApiKey, Bearer};

use super::problem::ApiError;
use crate::auth::{ClientInfo, Principal, SessionService, TokenPair};
use crate::config::{CookieSettings, SameSite};
use crate::error::Error;

pub const ACCESS_COOKIE: &str = "sf_access";
pub const REFRESH_COOKIE: &str = "sf_refresh";

async fn principal(req: &Request, token: &str) -> poem::Result<Principal> {
    let sessions = req.data::<Arc<SessionService>>().ok_or_else(|| {
        ApiError::from(Error::Internal(anyhow::anyhow!("session service missing")))
    })?;
    sessions
        .authenticate(token)
        .await
        .map_err(|e| ApiError::from(e).into())
}

async fn check_bearer(req: &Request, bearer: Bearer) -> poem::Result<Principal> {
    principal(req, &bearer.token).await
}

async fn check_cookie(req: &Request, key: ApiKey) -> poem::Result<Principal> {
    principal(req, &key.key).await
}

/// `Authorization: Bearer <access token>`.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", bearer_format = "JWT", checker = "check_bearer")]
pub struct BearerAuth(Principal);

/// The HttpOnly `sf_access` cookie set at login, for browsers.
#[derive(SecurityScheme)]
#[oai(
    ty = "api_key",
    key_in = "cookie",
    key_name = "sf_access",
    checker = "check_cookie"
)]
pub struct CookieAuth(Principal);

/// Either credential; every authenticated operation accepts both.
#[derive(SecurityScheme)]
pub enum Auth {
    Cookie(CookieAuth),
    Bearer(BearerAuth),
}

impl Auth {
    pub fn principal(&self) -> &Principal {
        match self {
            Auth::Cookie(CookieAuth(p)) | Auth::Bearer(BearerAuth(p)) => p,
        }
    }

    /// The principal, if they are an admin; 403 otherwise.
    pub fn admin(&self) -> Result<&Principal, Error> {
        let principal = self.principal();
        if principal.is_admin() {
            Ok(principal)
        } else {
            Err(Error::Forbidden)
        }
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
