//! `/api/v1/auth`: registering, signing in and out, refreshing tokens.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use poem::web::cookie::CookieJar;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::types::Example;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi};

use super::users::{EXAMPLE_EMAIL, EXAMPLE_PASSWORD, UserView};
use crate::api::body::Body;
use crate::api::email_text::EmailText;
use crate::api::problem::statuses::*;
use crate::api::problem::{ApiResult, Problems};
use crate::api::session_http::{Auth, Client, GuestCart, REFRESH_COOKIE, SessionCookies};
use crate::api::{ApiTags, NoContent};
use crate::auth::{LogoutScope, SessionSummary, TokenPair};
use crate::domain::{Address, DisplayName, Email, Password, SessionId};
use crate::error::Error;
use crate::services::accounts::{Account, Accounts, Registration};
use crate::services::cart::{CapReason, Carts, MergeMode, MergeOutcome};
use crate::services::password_reset::PasswordResets;
use crate::services::verification::Verifications;

#[derive(Debug, Object)]
#[oai(example)]
pub struct RegisterRequest {
    #[oai(validator(max_length = 254))]
    pub email: EmailText,
    /// 8-128 characters.
    #[oai(validator(min_length = 8, max_length = 128))]
    pub password: String,
    /// 1-100 characters.
    #[oai(validator(min_length = 1, max_length = 100))]
    pub name: String,
    /// Postal address, up to 500 characters.
    #[oai(default, validator(max_length = 500))]
    pub address: String,
}

/// What Swagger's "Try it out" sends: an account the login example then signs in to.
impl Example for RegisterRequest {
    fn example() -> Self {
        Self {
            email: EmailText(EXAMPLE_EMAIL.into()),
            password: EXAMPLE_PASSWORD.into(),
            name: "Ada Lovelace".into(),
            address: "12 St James's Square, London SW1Y 4JH".into(),
        }
    }
}

impl RegisterRequest {
    fn parse(self) -> crate::error::Result<Registration> {
        Ok(Registration {
            email: Email::parse(&self.email.0)?,
            password: Password::parse("password", self.password)?,
            name: DisplayName::parse(&self.name)?,
            address: Address::parse(&self.address)?,
        })
    }
}

#[derive(Debug, Object)]
#[oai(example)]
pub struct LoginRequest {
    pub email: EmailText,
    pub password: String,
    /// What happens to a guest cart sent along (`X-Cart-Token` or the `sf_cart` cookie): `merge`
    /// (default) adds its lines to the account's cart, summing quantities capped by stock;
    /// `replace` makes it the account's cart.
    pub cart_merge: Option<CartMerge>,
}

impl Example for LoginRequest {
    fn example() -> Self {
        Self {
            email: EmailText(EXAMPLE_EMAIL.into()),
            password: EXAMPLE_PASSWORD.into(),
            cart_merge: Some(CartMerge::Merge),
        }
    }
}

/// How a guest cart joins the account's cart at sign-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum CartMerge {
    Merge,
    Replace,
}

impl From<CartMerge> for MergeMode {
    fn from(mode: CartMerge) -> Self {
        match mode {
            CartMerge::Merge => MergeMode::Merge,
            CartMerge::Replace => MergeMode::Replace,
        }
    }
}

impl From<MergeMode> for CartMerge {
    fn from(mode: MergeMode) -> Self {
        match mode {
            MergeMode::Merge => CartMerge::Merge,
            MergeMode::Replace => CartMerge::Replace,
        }
    }
}

/// Why a guest line did not join the account's cart whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum CapReasonView {
    /// Not enough left in stock.
    Stock,
    /// 999 units per line.
    LineLimit,
    /// The product is no longer sold.
    Archived,
}

impl From<CapReason> for CapReasonView {
    fn from(reason: CapReason) -> Self {
        match reason {
            CapReason::Stock => CapReasonView::Stock,
            CapReason::LineLimit => CapReasonView::LineLimit,
            CapReason::Archived => CapReasonView::Archived,
        }
    }
}

/// Which sessions a sign-out ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum Scope {
    /// This session (the default).
    Local,
    /// Every other session of the account; this one stays signed in.
    Others,
    /// Every session of the account.
    Global,
}

impl From<Scope> for LogoutScope {
    fn from(scope: Scope) -> Self {
        match scope {
            Scope::Local => LogoutScope::Local,
            Scope::Others => LogoutScope::Others,
            Scope::Global => LogoutScope::Global,
        }
    }
}

/// A guest line that did not join the account's cart whole.
#[derive(Debug, Object)]
pub struct CappedLineView {
    pub product_id: i64,
    pub variant_id: i64,
    /// Units the merged line would have held.
    pub requested: i64,
    /// Units it holds.
    pub kept: i64,
    pub reason: CapReasonView,
}

/// What signing in did with the guest cart that came with the request.
#[derive(Debug, Object)]
pub struct CartMergeView {
    pub mode: CartMerge,
    /// Guest lines now in the account's cart.
    pub lines: u64,
    /// One warning per line that was capped or left out.
    pub capped: Vec<CappedLineView>,
}

impl From<MergeOutcome> for CartMergeView {
    fn from(m: MergeOutcome) -> Self {
        Self {
            mode: m.mode.into(),
            lines: m.lines as u64,
            capped: m
                .capped
                .into_iter()
                .map(|c| CappedLineView {
                    product_id: c.product_id.get(),
                    variant_id: c.variant_id.get(),
                    requested: c.requested,
                    kept: c.kept,
                    reason: c.reason.into(),
                })
                .collect(),
        }
    }
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
            session_id: pair.session_id.to_string(),
        }
    }
}

#[derive(Debug, Object)]
pub struct SignedIn {
    pub user: UserView,
    pub tokens: Tokens,
    /// Present when a guest cart came with the request and was merged into the account's cart.
    #[oai(skip_serializing_if_is_none)]
    pub cart_merge: Option<CartMergeView>,
}

/// One signed-in device of the caller.
#[derive(Debug, Object)]
pub struct SessionView {
    pub id: String,
    pub created_at: DateTime<Utc>,
    /// The last sign-in or token refresh of this session (accurate to the access token's lifetime).
    pub last_used_at: DateTime<Utc>,
    #[oai(skip_serializing_if_is_none)]
    pub user_agent: Option<String>,
    /// The network it was opened from: IPv4 /24 or IPv6 /48, never the full address.
    #[oai(skip_serializing_if_is_none)]
    pub ip_prefix: Option<String>,
    /// True for the session making this request.
    pub current: bool,
}

impl From<SessionSummary> for SessionView {
    fn from(s: SessionSummary) -> Self {
        Self {
            id: s.id,
            created_at: s.created_at,
            last_used_at: s.last_used_at,
            user_agent: s.user_agent,
            ip_prefix: s.ip_prefix,
            current: s.current,
        }
    }
}

#[derive(Debug, Object)]
pub struct SessionList {
    /// Live sessions, most recently used first.
    pub items: Vec<SessionView>,
}

#[derive(ApiResponse)]
pub enum Registered {
    /// The account was created and signed in.
    #[oai(status = 201)]
    Created(Json<SignedIn>),
}

pub struct AuthApi {
    pub accounts: Arc<Accounts>,
    pub carts: Arc<Carts>,
    pub resets: Arc<PasswordResets>,
    pub verifications: Arc<Verifications>,
    pub cookies: SessionCookies,
}

#[derive(Debug, Object)]
#[oai(example)]
pub struct VerificationConfirmation {
    /// The token from the link in the verification mail.
    #[oai(validator(min_length = 1, max_length = 100))]
    pub token: String,
}

impl Example for VerificationConfirmation {
    fn example() -> Self {
        Self {
            token: "the-token-from-the-verification-mail".into(),
        }
    }
}

#[derive(Debug, Object)]
#[oai(example)]
pub struct ResetRequest {
    pub email: EmailText,
}

impl Example for ResetRequest {
    fn example() -> Self {
        Self {
            email: EmailText(EXAMPLE_EMAIL.into()),
        }
    }
}

#[derive(Debug, Object)]
#[oai(example)]
pub struct ResetConfirmation {
    /// The token from the link in the reset mail.
    #[oai(validator(min_length = 1, max_length = 100))]
    pub token: String,
    /// The new password, 8-128 characters.
    #[oai(validator(min_length = 8, max_length = 128))]
    pub password: String,
}

impl Example for ResetConfirmation {
    fn example() -> Self {
        Self {
            token: "the-token-from-the-reset-mail".into(),
            password: "another horse battery staple".into(),
        }
    }
}

#[derive(Debug, Object)]
pub struct ResetRequested {
    /// The same words whether or not an account has this email.
    pub message: String,
}

#[derive(ApiResponse)]
pub enum ResetAccepted {
    /// Accepted: if an account has this email, a reset link is on its way.
    #[oai(status = 202)]
    Accepted(Json<ResetRequested>),
}

impl AuthApi {
    /// Sets the session cookies and takes in the guest cart, if one came along.
    async fn signed_in(
        &self,
        jar: &CookieJar,
        account: Account,
        pair: TokenPair,
        guest: GuestCart,
        mode: MergeMode,
    ) -> crate::error::Result<SignedIn> {
        let cart_merge = match guest.0 {
            Some(guest_id) => {
                let merged = self.carts.merge_guest(&guest_id, &account.id, mode).await?;
                self.cookies.clear_cart(jar);
                Some(merged.into())
            }
            None => None,
        };
        self.cookies.set(jar, &pair);
        Ok(SignedIn {
            user: account.into(),
            tokens: pair.into(),
            cart_merge,
        })
    }
}

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Auth")]
impl AuthApi {
    /// Ask for a password reset link
    ///
    /// Answers 202 with the same body whether or not an account has this email; if one does, a
    /// link to choose a new password is mailed (good once, for 30 minutes). Text that is no email
    /// address: 422 naming `email`. Limited like sign-in attempts (429 with `Retry-After`).
    #[oai(
        path = "/auth/password-reset",
        method = "post",
        operation_id = "requestPasswordReset"
    )]
    async fn request_password_reset(
        &self,
        body: Body<ResetRequest>,
        client: Client,
    ) -> ApiResult<ResetAccepted, Problems<{ BODY | TOO_MANY_REQUESTS }>> {
        self.resets.request(&body.0.email.0, &client.0).await?;
        Ok(ResetAccepted::Accepted(Json(ResetRequested {
            message: "If an account has this email, a link to reset its password is on its way."
                .into(),
        })))
    }

    /// Choose a new password with a reset token
    ///
    /// Sets the password and signs out every session of the account. A token that is unknown,
    /// used or expired: 422 naming `token`, nothing changed.
    #[oai(
        path = "/auth/password-reset/confirm",
        method = "post",
        operation_id = "confirmPasswordReset"
    )]
    async fn confirm_password_reset(
        &self,
        body: Body<ResetConfirmation>,
    ) -> ApiResult<NoContent, Problems<{ BODY }>> {
        let password = Password::parse("password", body.0.password)?;
        self.resets.confirm(&body.0.token, password).await?;
        Ok(NoContent::Done)
    }

    /// Verify an email with a mailed token
    ///
    /// Marks the account's email verified (`email_verified` on the profile). The token is good
    /// once, for 24 hours, and only while the account still has the address it was mailed to;
    /// otherwise 422 naming `token`, nothing changed.
    #[oai(
        path = "/auth/verify-email",
        method = "post",
        operation_id = "confirmEmailVerification"
    )]
    async fn confirm_email_verification(
        &self,
        body: Body<VerificationConfirmation>,
    ) -> ApiResult<NoContent, Problems<{ BODY }>> {
        self.verifications.confirm(&body.0.token).await?;
        Ok(NoContent::Done)
    }

    /// Create an account
    ///
    /// Creates a customer account and signs it in: the tokens come in the body and as cookies.
    /// The email must not be in use by another account, in any letter case. A guest cart sent along
    /// (`X-Cart-Token` or the `sf_cart` cookie) becomes the new account's cart.
    #[oai(path = "/auth/register", method = "post", operation_id = "register")]
    async fn register(
        &self,
        body: Body<RegisterRequest>,
        client: Client,
        guest: GuestCart,
        jar: &CookieJar,
    ) -> ApiResult<Registered, Problems<{ BODY | CONFLICT | TOO_MANY_REQUESTS }>> {
        let registration = body.0.parse()?;
        let (account, pair) = self
            .accounts
            .register_and_sign_in(registration, &client.0)
            .await?;
        let signed_in = self
            .signed_in(jar, account, pair, guest, MergeMode::Merge)
            .await?;
        Ok(Registered::Created(Json(signed_in)))
    }

    /// Sign in
    ///
    /// Failure always says "invalid email or password". Attempts are limited per address and per
    /// email; past the limit the answer is 429 with `Retry-After`.
    #[oai(path = "/auth/login", method = "post", operation_id = "login")]
    async fn login(
        &self,
        body: Body<LoginRequest>,
        client: Client,
        guest: GuestCart,
        jar: &CookieJar,
    ) -> ApiResult<Json<SignedIn>, Problems<{ BODY | UNAUTHORIZED | TOO_MANY_REQUESTS }>> {
        let mode = body.0.cart_merge.map_or(MergeMode::Merge, Into::into);
        let (account, pair) = self
            .accounts
            .login(&body.0.email.0, &body.0.password, &client.0)
            .await?;
        Ok(Json(self.signed_in(jar, account, pair, guest, mode).await?))
    }

    /// Exchange a refresh token for new tokens
    ///
    /// The refresh token comes in the body or the `sf_refresh` cookie. Each is good once: a reused
    /// one revokes its whole session.
    #[oai(path = "/auth/refresh", method = "post", operation_id = "refresh")]
    async fn refresh(
        &self,
        body: Body<RefreshRequest>,
        jar: &CookieJar,
    ) -> ApiResult<Json<Tokens>, Problems<{ BODY | UNAUTHORIZED }>> {
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

    /// Sign out
    ///
    /// `scope`: `local` (default) ends this session, `others` every other session of the account
    /// (this one stays signed in), `global` all of them. An ended session's access token is refused
    /// from the next request on, on every instance.
    #[oai(path = "/auth/logout", method = "post", operation_id = "logout")]
    async fn logout(
        &self,
        auth: Auth,
        scope: Query<Option<Scope>>,
        jar: &CookieJar,
    ) -> ApiResult<NoContent, Problems<{ SIGNED_IN | PARAMS }>> {
        let scope = scope.0.map_or(LogoutScope::Local, Into::into);
        self.accounts
            .sessions()
            .logout(auth.principal(), scope)
            .await?;
        if scope != LogoutScope::Others {
            self.cookies.clear(jar);
        }
        Ok(NoContent::Done)
    }

    /// List my sessions
    ///
    /// Every device signed in to this account, with where and when it was last used.
    #[oai(path = "/auth/sessions", method = "get", operation_id = "listSessions")]
    async fn sessions(&self, auth: Auth) -> ApiResult<Json<SessionList>, Problems<SIGNED_IN>> {
        let principal = auth.principal();
        let items = self
            .accounts
            .sessions()
            .list(principal.user_id(), principal.session_id())
            .await?;
        Ok(Json(SessionList {
            items: items.into_iter().map(Into::into).collect(),
        }))
    }

    /// Sign out one of my sessions
    ///
    /// 404 when the account has no live session with this id.
    #[oai(
        path = "/auth/sessions/:id",
        method = "delete",
        operation_id = "endSession"
    )]
    async fn end_session(
        &self,
        auth: Auth,
        id: Path<String>,
        jar: &CookieJar,
    ) -> ApiResult<NoContent, Problems<{ PARAMS | SIGNED_IN | NOT_FOUND }>> {
        let principal = auth.principal();
        let session_id = SessionId::parse(&id.0).ok_or(Error::NotFound("session"))?;
        self.accounts
            .sessions()
            .revoke_own(&session_id, principal.user_id())
            .await?;
        if &session_id == principal.session_id() {
            self.cookies.clear(jar);
        }
        Ok(NoContent::Done)
    }

    /// Sign out every session
    ///
    /// The same as `POST /auth/logout?scope=global`.
    #[oai(path = "/auth/logout-all", method = "post", operation_id = "logoutAll")]
    async fn logout_all(
        &self,
        auth: Auth,
        jar: &CookieJar,
    ) -> ApiResult<NoContent, Problems<SIGNED_IN>> {
        self.accounts
            .sessions()
            .logout(auth.principal(), LogoutScope::Global)
            .await?;
        self.cookies.clear(jar);
        Ok(NoContent::Done)
    }
}
