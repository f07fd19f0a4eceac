//! The `user` table.

use chrono::{DateTime, Utc};
use surrealdb::types::SurrealValue;

use super::carts::cart_lines_of;
use super::verification::NewVerification;
use crate::domain::{Role, SessionId, UserId};

use super::{Store, StoreError};

/// A user as stored. Holds the password hash: never turn this into a response directly.
#[derive(Debug, Clone, SurrealValue)]
pub struct UserRecord {
    pub id: String,
    pub email: String,
    pub email_verified: bool,
    pub name: String,
    pub address: String,
    pub role: String,
    pub password_hash: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub struct NewUser<'a> {
    pub email: &'a str,
    pub name: &'a str,
    pub address: &'a str,
    pub password_hash: &'a str,
    pub role: Role,
}

/// Fields to change; `None` leaves a field as it is.
#[derive(Default)]
pub struct ProfileChanges {
    pub email: Option<String>,
    pub name: Option<String>,
    pub address: Option<String>,
}

/// A user as `UserRecord` reads it: a macro, so that it can be `concat!`ed into query text.
macro_rules! user_columns {
    () => {
        "record::id(id) AS id, email, (email_verified ?? false) AS email_verified, name, address, role,
         password_hash, created_at, updated_at"
    };
}

/// The database reports a unique-index clash as an error naming the index.
pub(super) fn on_email_taken(err: surrealdb::Error) -> StoreError {
    if err.message().contains("user_email") {
        StoreError::EmailTaken
    } else {
        StoreError::Database(err)
    }
}

impl Store {
    /// Creates a user and, with `verify`, its first email verification and that mail, in one
    /// transaction.
    pub async fn create_user(
        &self,
        user: NewUser<'_>,
        verify: Option<NewVerification>,
    ) -> Result<UserRecord, StoreError> {
        let mut response = self
            .db()
            .query(concat!(
                "{
                    LET $u = (CREATE ONLY user SET email = $email, name = $name, address = $address,
                        password_hash = $hash, role = $role RETURN VALUE id);
                    IF $verify != NONE {
                        ",
                super::verification::issue_verification!(),
                "
                    };
                    RETURN (SELECT ",
                user_columns!(),
                " FROM ONLY $u);
                 }"
            ))
            .bind(("email", user.email.to_string()))
            .bind(("name", user.name.to_string()))
            .bind(("address", user.address.to_string()))
            .bind(("hash", user.password_hash.to_string()))
            .bind(("role", user.role.as_str().to_string()))
            .bind(("verify", verify))
            .await?;
        let created: Option<UserRecord> = response.take(0).map_err(on_email_taken)?;
        created.ok_or_else(|| {
            StoreError::Database(surrealdb::Error::internal("CREATE returned nothing".into()))
        })
    }

    pub async fn user_by_email(&self, email: &str) -> Result<Option<UserRecord>, StoreError> {
        let mut response = self
            .db()
            .query(concat!(
                "SELECT ",
                user_columns!(),
                " FROM user WHERE email = $email LIMIT 1"
            ))
            .bind(("email", email.to_string()))
            .await?;
        let mut users: Vec<UserRecord> = response.take(0)?;
        Ok(users.pop())
    }

    pub async fn user_by_id(&self, id: &UserId) -> Result<Option<UserRecord>, StoreError> {
        let mut response = self
            .db()
            .query(concat!(
                "SELECT ",
                user_columns!(),
                " FROM ONLY type::record('user', $id)"
            ))
            .bind(("id", id.to_string()))
            .await?;
        Ok(response.take(0)?)
    }

    /// Applies `changes` to an existing user; `None` when the user is gone. A new email is
    /// unverified, and `verify` (for that email) is issued with it in the same transaction.
    pub async fn update_profile(
        &self,
        id: &UserId,
        changes: ProfileChanges,
        verify: Option<NewVerification>,
    ) -> Result<Option<UserRecord>, StoreError> {
        let mut response = self
            .db()
            .query(concat!(
                "{
                    LET $u = type::record('user', $id);
                    LET $before = (SELECT VALUE email FROM ONLY $u);
                    IF $before = NONE { RETURN NONE };
                    UPDATE $u SET
                        email = $email ?? email, name = $name ?? name, address = $address ?? address;
                    IF $email != NONE AND $email != $before {
                        UPDATE $u SET email_verified = false;
                        IF $verify != NONE {
                            ",
                super::verification::issue_verification!(),
                "
                        };
                    };
                    RETURN (SELECT ",
                user_columns!(),
                " FROM ONLY $u);
                 }"
            ))
            .bind(("id", id.to_string()))
            .bind(("email", changes.email))
            .bind(("name", changes.name))
            .bind(("address", changes.address))
            .bind(("verify", verify))
            .await?;
        response.take(0).map_err(on_email_taken)
    }

    /// Replaces the password hash; false when the user is gone.
    pub async fn set_password_hash(&self, id: &UserId, hash: &str) -> Result<bool, StoreError> {
        let mut response = self
            .db()
            .query("UPDATE type::record('user', $id) SET password_hash = $hash WHERE id != NONE RETURN record::id(id) AS id")
            .bind(("id", id.to_string()))
            .bind(("hash", hash.to_string()))
            .await?;
        let updated: Vec<serde_json::Value> = response.take(0)?;
        Ok(!updated.is_empty())
    }

    pub async fn set_role(&self, id: &UserId, role: Role) -> Result<(), StoreError> {
        self.db()
            .query("UPDATE type::record('user', $id) SET role = $role WHERE id != NONE")
            .bind(("id", id.to_string()))
            .bind(("role", role.as_str().to_string()))
            .await?
            .check()?;
        Ok(())
    }

    /// Deletes the user, their sessions and their cart in one transaction; returns the ids of the
    /// sessions removed. Their orders stay: they are the store's record of what was sold.
    pub async fn delete_user(&self, id: &UserId) -> Result<Vec<SessionId>, StoreError> {
        // One block is one statement, and a statement is its own transaction.
        let mut response = self
            .db()
            .query(concat!(
                "{
                    LET $user = type::record('user', $id);
                    LET $sessions = (DELETE session WHERE user = $user RETURN BEFORE);
                    DELETE ",
                cart_lines_of!("$id"),
                ";
                    DELETE type::record('cart', $id);
                    DELETE $user;
                    RETURN $sessions.map(|$s| record::id($s.id));
                 }"
            ))
            .bind(("id", id.to_string()))
            .await?;
        let sessions: Vec<String> = response.take(0)?;
        Ok(sessions.into_iter().map(SessionId::from_trusted).collect())
    }
}
