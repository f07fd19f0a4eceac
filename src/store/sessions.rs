//! The `session` table: one record per signed-in device.

use chrono::{DateTime, Utc};
use surrealdb::types::SurrealValue;

use crate::domain::{SessionId, UserId};

use super::{Store, StoreError};

/// What the access check and the refresh need to know about a session.
#[derive(Debug, Clone, SurrealValue)]
pub struct SessionState {
    pub user_id: String,
    pub role: Option<String>,
    pub generation: i64,
    pub revoked: bool,
    pub expired: bool,
    /// Whole seconds since the last rotation (since creation when never rotated).
    pub rotated_secs_ago: i64,
}

impl SessionState {
    pub fn is_active(&self) -> bool {
        !self.revoked && !self.expired && self.role.is_some()
    }
}

pub struct NewSession<'a> {
    pub id: &'a SessionId,
    pub user_id: &'a UserId,
    pub expires_at: DateTime<Utc>,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
}

/// `role` is NONE when the user was deleted: such a session is dead. A macro, so that it can be
/// `concat!`ed into query text.
macro_rules! session_state {
    () => {
        "record::id(user) AS user_id, user.role AS role, generation,
     revoked_at != NONE AS revoked, expires_at < time::now() AS expired,
     time::unix(time::now()) - time::unix(rotated_at OR created_at) AS rotated_secs_ago"
    };
}

/// A live session as its owner sees it in their list of devices.
#[derive(Debug, Clone, SurrealValue)]
pub struct SessionRecord {
    pub id: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
}

impl Store {
    pub async fn create_session(&self, session: NewSession<'_>) -> Result<(), StoreError> {
        self.db()
            .query(
                "CREATE type::record('session', $id) SET user = type::record('user', $user),
                     expires_at = $expires_at, user_agent = $user_agent, ip = $ip",
            )
            .bind(("id", session.id.to_string()))
            .bind(("user", session.user_id.to_string()))
            .bind(("expires_at", session.expires_at))
            .bind(("user_agent", session.user_agent))
            .bind(("ip", session.ip))
            .await?
            .check()?;
        Ok(())
    }

    pub async fn session_state(&self, id: &SessionId) -> Result<Option<SessionState>, StoreError> {
        let mut response = self
            .db()
            .query(concat!(
                "SELECT ",
                session_state!(),
                " FROM ONLY type::record('session', $id)"
            ))
            .bind(("id", id.to_string()))
            .await?;
        Ok(response.take(0)?)
    }

    /// Moves a live session from `generation` to the next one, extending its life to `expires_at`.
    /// `None` when the session is not at that generation (already rotated), revoked or expired:
    /// the compare and the write are one statement, so two refreshes with one token cannot both win.
    pub async fn rotate_session(
        &self,
        id: &SessionId,
        generation: i64,
        expires_at: DateTime<Utc>,
    ) -> Result<Option<SessionState>, StoreError> {
        let mut response = self
            .db()
            .query(concat!(
                "UPDATE ONLY type::record('session', $id)
                 SET generation += 1, last_used_at = time::now(), rotated_at = time::now(),
                     expires_at = $expires_at
                 WHERE generation = $generation AND revoked_at = NONE AND expires_at > time::now()
                 RETURN ",
                session_state!()
            ))
            .bind(("id", id.to_string()))
            .bind(("generation", generation))
            .bind(("expires_at", expires_at))
            .await?;
        Ok(response.take(0)?)
    }

    /// The live (not revoked, not expired) sessions of `user_id`, most recently used first.
    pub async fn live_sessions(&self, user_id: &UserId) -> Result<Vec<SessionRecord>, StoreError> {
        let mut response = self
            .db()
            .query(
                "SELECT record::id(id) AS id, created_at, last_used_at, user_agent, ip FROM session
                 WHERE user = type::record('user', $user) AND revoked_at = NONE
                   AND expires_at > time::now()
                 ORDER BY last_used_at DESC",
            )
            .bind(("user", user_id.to_string()))
            .await?;
        Ok(response.take(0)?)
    }

    /// Revokes one session of `user_id`; false when there is no such live session of theirs.
    pub async fn revoke_session(
        &self,
        id: &SessionId,
        user_id: &UserId,
    ) -> Result<bool, StoreError> {
        let mut response = self
            .db()
            .query(
                "UPDATE type::record('session', $id) SET revoked_at = time::now()
                 WHERE user = type::record('user', $user) AND revoked_at = NONE
                 RETURN record::id(id) AS id",
            )
            .bind(("id", id.to_string()))
            .bind(("user", user_id.to_string()))
            .await?;
        let revoked: Vec<serde_json::Value> = response.take(0)?;
        Ok(!revoked.is_empty())
    }

    /// Revokes every live session of `user_id` except `keep`; returns the ids revoked.
    pub async fn revoke_user_sessions(
        &self,
        user_id: &UserId,
        keep: Option<&SessionId>,
    ) -> Result<Vec<SessionId>, StoreError> {
        let mut response = self
            .db()
            .query(
                "UPDATE session SET revoked_at = time::now()
                 WHERE user = type::record('user', $user) AND revoked_at = NONE
                   AND ($keep = NONE OR id != type::record('session', $keep))
                 RETURN VALUE record::id(id)",
            )
            .bind(("user", user_id.to_string()))
            .bind(("keep", keep.map(ToString::to_string)))
            .await?;
        let revoked: Vec<String> = response.take(0)?;
        Ok(revoked.into_iter().map(SessionId::from_trusted).collect())
    }
}
