//! `/api/v1/users/me`: the caller's own account.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use poem::web::cookie::CookieJar;
use poem_openapi::payload::Json;
use poem_openapi::types::Example;
use poem_openapi::{Enum, Object, OpenApi};

use crate::api::body::Body;
use crate::api::email_text::EmailText;
use crate::api::problem::statuses::*;
use crate::api::problem::{ApiResult, Problems};
use crate::api::session_http::{Auth, Client, SessionCookies};
use crate::api::{ApiTags, NoContent, Queued};
use crate::domain::{Address, DisplayName, Email, Password, Role};
use crate::services::accounts::{Account, Accounts, ProfileUpdate};
use crate::services::verification::Verifications;

/// A user's account as they see it. Never carries the password hash.
#[derive(Debug, Object)]
pub struct UserView {
    pub id: String,
    pub email: String,
    /// Whether the email was verified with a mailed link (since it last changed).
    pub email_verified: bool,
    pub name: String,
    pub address: String,
    pub role: RoleView,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What a user may do; only `storefront create-admin` makes an admin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum RoleView {
    Customer,
    Admin,
}

impl From<Role> for RoleView {
    fn from(role: Role) -> Self {
        match role {
            Role::Customer => RoleView::Customer,
            Role::Admin => RoleView::Admin,
        }
    }
}

impl From<Account> for UserView {
    fn from(account: Account) -> Self {
        Self {
            id: account.id.to_string(),
            email: account.email,
            email_verified: account.email_verified,
            name: account.name,
            address: account.address,
            role: account.role.into(),
            created_at: account.created_at,
            updated_at: account.updated_at,
        }
    }
}

/// The account the request examples use (register it first, then sign in with it).
pub const EXAMPLE_EMAIL: &str = "ada@example.com";
pub const EXAMPLE_PASSWORD: &str = "correct horse battery staple";

/// Fields to change; those left out stay as they are. The role cannot be changed here.
#[derive(Debug, Object)]
#[oai(deny_unknown_fields, example)]
pub struct ProfilePatch {
    /// A new email address (must not belong to another account).
    #[oai(skip_serializing_if_is_none, validator(max_length = 254))]
    pub email: Option<EmailText>,
    /// 1-100 characters.
    #[oai(
        skip_serializing_if_is_none,
        validator(min_length = 1, max_length = 100)
    )]
    pub name: Option<String>,
    /// Up to 500 characters.
    #[oai(skip_serializing_if_is_none, validator(max_length = 500))]
    pub address: Option<String>,
}

impl Example for ProfilePatch {
    fn example() -> Self {
        Self {
            email: None,
            name: Some("Ada King".into()),
            address: None,
        }
    }
}

impl ProfilePatch {
    fn parse(self) -> crate::error::Result<ProfileUpdate> {
        Ok(ProfileUpdate {
            email: self.email.map(|e| Email::parse(&e.0)).transpose()?,
            name: self.name.as_deref().map(DisplayName::parse).transpose()?,
            address: self.address.as_deref().map(Address::parse).transpose()?,
        })
    }
}

#[derive(Debug, Object)]
#[oai(example)]
pub struct PasswordChange {
    pub current_password: String,
    /// 8-128 characters.
    #[oai(validator(min_length = 8, max_length = 128))]
    pub new_password: String,
}

impl Example for PasswordChange {
    fn example() -> Self {
        Self {
            current_password: EXAMPLE_PASSWORD.into(),
            new_password: "another horse battery staple".into(),
        }
    }
}

pub struct UsersApi {
    pub accounts: Arc<Accounts>,
    pub verifications: Arc<Verifications>,
    pub cookies: SessionCookies,
}

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Users")]
impl UsersApi {
    /// Your account
    #[oai(path = "/users/me", method = "get", operation_id = "getMe")]
    async fn me(
        &self,
        auth: Auth,
    ) -> ApiResult<Json<UserView>, Problems<{ SIGNED_IN | NOT_FOUND }>> {
        Ok(Json(self.accounts.account(auth.principal()).await?.into()))
    }

    /// Change your name, email or address
    ///
    /// A new email is unverified until the link mailed to it is opened.
    #[oai(path = "/users/me", method = "patch", operation_id = "updateMe")]
    async fn update_me(
        &self,
        auth: Auth,
        body: Body<ProfilePatch>,
    ) -> ApiResult<Json<UserView>, Problems<{ BODY | SIGNED_IN | NOT_FOUND | CONFLICT }>> {
        let update = body.0.parse()?;
        let account = self
            .accounts
            .update_profile(auth.principal(), update)
            .await?;
        Ok(Json(account.into()))
    }

    /// Delete your account
    ///
    /// Removes the account and signs out every session of it at once.
    #[oai(path = "/users/me", method = "delete", operation_id = "deleteMe")]
    async fn delete_me(
        &self,
        auth: Auth,
        jar: &CookieJar,
    ) -> ApiResult<NoContent, Problems<SIGNED_IN>> {
        self.accounts.delete(auth.principal()).await?;
        self.cookies.clear(jar);
        Ok(NoContent::Done)
    }

    /// Change your password
    ///
    /// Needs the current password. Every other session is signed out; this one stays.
    #[oai(
        path = "/users/me/password",
        method = "put",
        operation_id = "changePassword"
    )]
    async fn change_password(
        &self,
        auth: Auth,
        body: Body<PasswordChange>,
    ) -> ApiResult<NoContent, Problems<{ BODY | SIGNED_IN | NOT_FOUND }>> {
        let new = Password::parse("new_password", body.0.new_password)?;
        self.accounts
            .change_password(auth.principal(), &body.0.current_password, new)
            .await?;
        Ok(NoContent::Done)
    }

    /// Mail a new link to verify your email
    ///
    /// 202: a link is on its way to the account's email (good once, for 24 hours; earlier links
    /// stop working). 409 `email_already_verified` when there is nothing to verify. Limited like
    /// sign-in attempts (429 with `Retry-After`).
    #[oai(
        path = "/users/me/verify-email",
        method = "post",
        operation_id = "requestEmailVerification"
    )]
    async fn request_verification(
        &self,
        auth: Auth,
        client: Client,
    ) -> ApiResult<Queued, Problems<{ SIGNED_IN | NOT_FOUND | CONFLICT | TOO_MANY_REQUESTS }>> {
        self.verifications
            .request(auth.principal(), &client.0)
            .await?;
        Ok(Queued::Accepted)
    }
}
