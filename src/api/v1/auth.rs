//! `/api/v1/auth`: registering, signing in and out, refreshing tokens.

use std::sync::Arc;

use poem::web::cookie::CookieJar;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};

use super::users::UserView;
use crate::api::problem::ApiResult;
use crate::api::session_http::{Auth, Client, REFRESH_COOKIE, SessionCookies};
use crate::api::{ApiTags, NoContent};
use crate::auth::TokenPair;
use crate::domain::{Address, DisplayName, Email, Password};
use crate::error::Error;
use crate::services::accounts::{Account, Accounts, Registration};

#[derive(Debug, Object)]
pub struct RegisterRequest {
    pub email: String,
    /// 8-128 characters.
    pub password: String,
    /// 1-100 characters.
    pub name: String,
    /// Postal address, up to 500 characters.
    #[oai(default)]
    pub address: String,
}

impl RegisterRequest {
    fn parse(self) -> crate::error::Result<Registration> {
        Ok(Registration {
            email: Email::parse(&self.email)?,
            password: Password::parse("password", self.password)?,
            name: DisplayName::parse(&self.name)?,
            address: Address::parse(&self.address)?,
        })
    }
}

#[derive(Debug, Object)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

#[derive(Debug, Object)]
pub struct RefreshRequest {
    /// The refresh token; may be left out when it travels in the `sf_refresh` cookie.
    pub refresh_token: Option<String>,
}

/// A session's tokens. The same values are also set as HttpOnly cookies.
#[derive(Debug, Object)]
pub struct Tokens {
    /// Short-lived JWT for `Authorization: Bearer`.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// Opaque, single-use: each refresh returns a new one. Presenting a used one signs the session out.
    pub refresh_token: String,
    /// Seconds until the refresh token expires.
    pub refresh_expires_in: u64,
    pub session_id: String,
}

impl From<TokenPair> for Tokens {
    fn from(pair: TokenPair) -> Self {
        Self {
            access_token: pair.access_token,
            token_type: "Bearer".into(),
            expires_in: pair.access_ttl.as_secs(),
            refresh_token: pair.refresh_token,
            refresh_expires_in: pair.refresh_ttl.as_secs(),
            session_id: pair.session_id,
        }
    }
}

#[derive(Debug, Object)]
pub struct SignedIn {
    pub user: UserView,
    pub tokens: Tokens,
}

#[derive(ApiResponse)]
pub enum Registered {
    /// The account was created and signed in.
    #[oai(status = 201)]
    Created(Json<SignedIn>),
}

pub struct AuthApi {
    pub accounts: Arc<Accounts>,
    pub cookies: SessionCookies,
}

impl AuthApi {
    fn signed_in(&self, jar: &CookieJar, account: Account, pair: TokenPair) -> SignedIn {
        self.cookies.set(jar, &pair);
        SignedIn {
            user: account.into(),
            tokens: pair.into(),
        }
    }
}

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Auth")]
impl AuthApi {
    /// Create an account
    ///
    /// Creates a customer account and signs it in: the tokens come in the body and as cookies.
    /// The email must not be in use by another account, in any letter case.
    #[oai(path = "/auth/register", method = "post")]
    async fn register(
        &self,
        body: Json<RegisterRequest>,
        client: Client,
        jar: &CookieJar,
    ) -> ApiResult<Registered> {
        let registration = body.0.parse()?;
        let (account, pair) = self
            .accounts
            .register_and_sign_in(registration, &client.0)
            .await?;
        Ok(Registered::Created(Json(
            self.signed_in(jar, account, pair),
        )))
    }

    /// Sign in
    ///
    /// Failure always says "invalid email or password". Attempts are limited per address and per
    /// email; past the limit the answer is 429 with `Retry-After`.
    #[oai(path = "/auth/login", method = "post")]
    async fn login(
        &self,
        body: Json<LoginRequest>,
        client: Client,
        jar: &CookieJar,
    ) -> ApiResult<Json<SignedIn>> {
        let (account, pair) = self
            .accounts
            .login(&body.0.email, &body.0.password, &client.0)
            .await?;
        Ok(Json(self.signed_in(jar, account, pair)))
    }

    /// Exchange a refresh token for new tokens
    ///
    /// The refresh token comes in the body or the `sf_refresh` cookie. Each is good once: a reused
    /// one revokes its whole session.
    #[oai(path = "/auth/refresh", method = "post")]
    async fn refresh(
        &self,
        body: Json<RefreshRequest>,
        jar: &CookieJar,
    ) -> ApiResult<Json<Tokens>> {
        let token = body
            .0
            .refresh_token
            .or_else(|| jar.get(REFRESH_COOKIE).map(|c| c.value_str().to_string()))
            .filter(|t| !t.is_empty())
            .ok_or(Error::Unauthenticated)?;
        let pair = self.accounts.sessions().refresh(&token).await?;
        self.cookies.set(jar, &pair);
        Ok(Json(pair.into()))
    }

    /// Sign out this session
    ///
    /// Its access token is refused from the next request on, on every instance.
    #[oai(path = "/auth/logout", method = "post")]
    async fn logout(&self, auth: Auth, jar: &CookieJar) -> ApiResult<NoContent> {
        let principal = auth.principal();
        self.accounts
            .sessions()
            .revoke(&principal.session_id, &principal.user_id)
            .await?;
        self.cookies.clear(jar);
        Ok(NoContent::Done)
    }

    /// Sign out every session
    #[oai(path = "/auth/logout-all", method = "post")]
    async fn logout_all(&self, auth: Auth, jar: &CookieJar) -> ApiResult<NoContent> {
        self.accounts
            .sessions()
            .revoke_all(&auth.principal().user_id, None)
            .await?;
        self.cookies.clear(jar);
        Ok(NoContent::Done)
    }
}
