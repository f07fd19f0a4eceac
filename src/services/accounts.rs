//! Accounts: registration, login, profile and password rules.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::auth::{ClientInfo, LoginLimiter, PasswordHasher, Principal, SessionService, TokenPair};
use crate::domain::{Address, DisplayName, Email, Password, Role, UserId};
use crate::error::{Error, Result};
use crate::services::verification::Verifications;
use crate::store::Store;
use crate::store::users::{NewUser, ProfileChanges, UserRecord};

/// A user as the rest of the service sees them: everything but the password hash.
#[derive(Debug, Clone)]
pub struct Account {
    pub id: UserId,
    pub email: String,
    /// Whether the email was verified by a mailed token (since it last changed).
    pub email_verified: bool,
    pub name: String,
    pub address: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A stored role this version does not know is an error, never read as some other role.
impl TryFrom<UserRecord> for Account {
    type Error = Error;

    fn try_from(user: UserRecord) -> Result<Self> {
        Ok(Self {
            role: Role::parse(&user.role).ok_or_else(|| {
                Error::Internal(anyhow::anyhow!(
                    "user {} has unknown role {:?}",
                    user.id,
                    user.role
                ))
            })?,
            id: UserId::from_trusted(user.id),
            email: user.email,
            email_verified: user.email_verified,
            name: user.name,
            address: user.address,
            created_at: user.created_at,
            updated_at: user.updated_at,
        })
    }
}

pub struct Registration {
    pub email: Email,
    pub password: Password,
    pub name: DisplayName,
    pub address: Address,
}

#[derive(Default)]
pub struct ProfileUpdate {
    pub email: Option<Email>,
    pub name: Option<DisplayName>,
    pub address: Option<Address>,
}

pub struct Accounts {
    store: Store,
    hasher: PasswordHasher,
    sessions: Arc<SessionService>,
    limiter: LoginLimiter,
    verifications: Arc<Verifications>,
}

impl Accounts {
    pub fn new(
        store: Store,
        hasher: PasswordHasher,
        sessions: Arc<SessionService>,
        limiter: LoginLimiter,
        verifications: Arc<Verifications>,
    ) -> Self {
        Self {
            store,
            hasher,
            sessions,
            limiter,
            verifications,
        }
    }

    pub fn sessions(&self) -> &Arc<SessionService> {
        &self.sessions
    }

    /// Creates a customer account, and mails a link to verify its email. Signing in is the
    /// caller's choice (`register_and_sign_in`).
    #[tracing::instrument(skip_all)]
    pub async fn register(&self, registration: Registration) -> Result<Account> {
        let hash = self.hasher.hash(&registration.password).await?;
        let verify = self.verifications.issue(registration.email.as_str());
        let user = self
            .store
            .create_user(
                NewUser {
                    email: registration.email.as_str(),
                    name: registration.name.as_str(),
                    address: &registration.address.into_inner(),
                    password_hash: &hash,
                    role: Role::Customer,
                },
                Some(verify),
            )
            .await?;
        self.verifications.sent();
        tracing::info!(user.id = %user.id, "account registered");
        user.try_into()
    }

    pub async fn register_and_sign_in(
        &self,
        registration: Registration,
        client: &ClientInfo,
    ) -> Result<(Account, TokenPair)> {
        let account = self.register(registration).await?;
        let tokens = self
            .sessions
            .open(&account.id, account.role, client)
            .await?;
        Ok((account, tokens))
    }

    /// Checks credentials and opens a session. Unknown email and wrong password cost the same argon2
    /// work and get the same error. Failed attempts are limited (`LoginLimiter`) under the email's
    /// normalized form, so respelling an address does not reset its counter.
    #[tracing::instrument(skip_all)]
    pub async fn login(
        &self,
        raw_email: &str,
        password: &str,
        client: &ClientInfo,
    ) -> Result<(Account, TokenPair)> {
        let email = Email::parse(raw_email);
        // What is not an address matches no account; it is still counted, by (a bounded prefix of)
        // what was typed.
        let limit_key = match &email {
            Ok(email) => email.as_str().to_string(),
            Err(_) => raw_email.trim().to_lowercase().chars().take(300).collect(),
        };
        let attempt = self
            .limiter
            .attempt(client.ip.as_deref(), &limit_key)
            .await?;
        let user = match email {
            Ok(email) => self.store.user_by_email(email.as_str()).await?,
            Err(_) => None,
        };
        let stored_hash = user.as_ref().map(|u| u.password_hash.clone());
        if !self.hasher.verify(password, stored_hash).await? {
            return Err(Error::InvalidCredentials);
        }
        let account = Account::try_from(user.ok_or(Error::InvalidCredentials)?)?;
        self.limiter.succeeded(attempt).await;
        let tokens = self
            .sessions
            .open(&account.id, account.role, client)
            .await?;
        tracing::info!(user.id = %account.id, session.id = %tokens.session_id, "signed in");
        Ok((account, tokens))
    }

    pub async fn account(&self, principal: &Principal) -> Result<Account> {
        self.store
            .user_by_id(principal.user_id())
            .await?
            .ok_or(Error::NotFound("user"))?
            .try_into()
    }

    #[tracing::instrument(skip_all, fields(user.id = %principal.user_id()))]
    pub async fn update_profile(
        &self,
        principal: &Principal,
        update: ProfileUpdate,
    ) -> Result<Account> {
        // A new email is mailed a verification link; the store issues it only if the email changed.
        let verify = update
            .email
            .as_ref()
            .map(|e| self.verifications.issue(e.as_str()));
        let may_mail = verify.is_some();
        let changes = ProfileChanges {
            email: update.email.map(|e| e.as_str().to_string()),
            name: update.name.map(DisplayName::into_inner),
            address: update.address.map(Address::into_inner),
        };
        let user = self
            .store
            .update_profile(principal.user_id(), changes, verify)
            .await?
            .ok_or(Error::NotFound("user"))?;
        // A name or address change writes no mail: the sender is not woken for nothing.
        if may_mail {
            self.verifications.sent();
        }
        user.try_into()
    }

    /// Changes the password after checking the current one, and signs out every other session.
    #[tracing::instrument(skip_all, fields(user.id = %principal.user_id()))]
    pub async fn change_password(
        &self,
        principal: &Principal,
        current: &str,
        new: Password,
    ) -> Result<()> {
        let user = self
            .store
            .user_by_id(principal.user_id())
            .await?
            .ok_or(Error::NotFound("user"))?;
        if !self
            .hasher
            .verify(current, Some(user.password_hash))
            .await?
        {
            return Err(Error::validation(
                "current_password",
                "is not your current password",
            ));
        }
        let hash = self.hasher.hash(&new).await?;
        if !self
            .store
            .set_password_hash(principal.user_id(), &hash)
            .await?
        {
            return Err(Error::NotFound("user"));
        }
        self.sessions
            .revoke_all(principal.user_id(), Some(principal.session_id()))
            .await
    }

    /// Deletes the account and every session of it; its tokens stop working at once.
    #[tracing::instrument(skip_all, fields(user.id = %principal.user_id()))]
    pub async fn delete(&self, principal: &Principal) -> Result<()> {
        let sessions = self.store.delete_user(principal.user_id()).await?;
        self.sessions.mark_revoked(&sessions).await;
        tracing::info!("account deleted");
        Ok(())
    }

    /// Makes `email` an admin: promotes an existing user, or creates one with `password`.
    /// Only the `create-admin` command calls this; nothing over HTTP does.
    pub async fn create_admin(
        &self,
        email: &Email,
        password: impl FnOnce() -> Result<Password>,
    ) -> Result<(Account, bool)> {
        if let Some(user) = self.store.user_by_email(email.as_str()).await? {
            let mut account = Account::try_from(user)?;
            if account.role == Role::Admin {
                // Already an admin: nothing to change, and its sessions stay valid.
                return Ok((account, false));
            }
            self.store.set_role(&account.id, Role::Admin).await?;
            account.role = Role::Admin;
            // Sessions opened as a customer carry that role in their tokens: make them sign in again.
            self.sessions.revoke_all(&account.id, None).await?;
            return Ok((account, false));
        }
        let hash = self.hasher.hash(&password()?).await?;
        let name = email.as_str().split('@').next().unwrap_or("admin");
        let user = self
            .store
            .create_user(
                NewUser {
                    email: email.as_str(),
                    name,
                    address: "",
                    password_hash: &hash,
                    role: Role::Admin,
                },
                None,
            )
            .await?;
        Ok((user.try_into()?, true))
    }
}
