//! Sessions: opened at login, checked on every request, rotated on refresh, revoked at logout.
//!
//! The state lives in SurrealDB; Redis (or the in-process cache) holds a short-lived "active"/"revoked"
//! marker per session so that checking a token does not cost a database round trip. A revocation writes
//! the database first, then overwrites the marker, and readers only ever fill an absent marker, so a
//! revoked session's token is refused on the next request on every instance sharing the cache.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;

use crate::auth::TokenIssuer;
use crate::domain::Role;
use crate::error::{Error, Result};
use crate::store::sessions::NewSession;
use crate::store::{Store, StoreError};

/// How long an "active" marker may be trusted before the database is asked again.
const ACTIVE_MARKER_TTL: Duration = Duration::from_secs(60);
const ACTIVE: &[u8] = b"1";
const REVOKED: &[u8] = b"0";

/// The caller of an authenticated request.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user_id: String,
    pub role: Role,
    pub session_id: String,
}

impl Principal {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

/// Where a session was opened from, shown to the user when they review their sessions.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// The tokens of a freshly opened or rotated session.
#[derive(Debug, Clone)]
pub struct TokenPair {
    pub session_id: String,
    pub access_token: String,
    pub access_ttl: Duration,
    pub refresh_token: String,
    pub refresh_ttl: Duration,
}

pub struct SessionService {
    store: Store,
    cache: crate::cache::Cache,
    tokens: Arc<TokenIssuer>,
    refresh_ttl: Duration,
}

fn marker_key(session_id: &str) -> String {
    format!("session:{session_id}")
}

impl SessionService {
    pub fn new(
        store: Store,
        cache: crate::cache::Cache,
        tokens: Arc<TokenIssuer>,
        refresh_ttl: Duration,
    ) -> Self {
        Self {
            store,
            cache,
            tokens,
            refresh_ttl,
        }
    }

    /// Opens a new session for a user who just proved who they are.
    pub async fn open(&self, user_id: &str, role: Role, client: &ClientInfo) -> Result<TokenPair> {
        let session_id = uuid::Uuid::new_v4().to_string();
        self.store
            .create_session(NewSession {
                id: &session_id,
                user_id,
                expires_at: Utc::now() + self.refresh_ttl,
                user_agent: client.user_agent.clone(),
                ip: client.ip.clone(),
            })
            .await?;
        self.pair(user_id, role, &session_id, 0)
    }

    /// The principal behind an access token, if the token is genuine, unexpired, and its session live.
    pub async fn authenticate(&self, access_token: &str) -> Result<Principal> {
        let claims = self
            .tokens
            .verify_access(access_token)
            .ok_or(Error::InvalidToken)?;
        let role = Role::parse(&claims.role).ok_or(Error::InvalidToken)?;
        let key = marker_key(&claims.sid);
        let active = match self.cache.get(&key).await.as_deref() {
            Some(ACTIVE) => true,
            Some(_) => false,
            None => {
                let state = self.store.session_state(&claims.sid).await?;
                let active = state.is_some_and(|s| s.is_active() && s.user_id == claims.sub);
                let (marker, ttl) = if active {
                    (ACTIVE, ACTIVE_MARKER_TTL)
                } else {
                    (REVOKED, self.revoked_marker_ttl())
                };
                self.cache.set_if_absent(&key, marker, ttl).await;
                active
            }
        };
        if !active {
            return Err(Error::InvalidToken);
        }
        Ok(Principal {
            user_id: claims.sub,
            role,
            session_id: claims.sid,
        })
    }

    /// Exchanges a refresh token for a new pair. A token that was already exchanged (an older
    /// generation) means two parties hold it: the whole session is revoked.
    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenPair> {
        let (session_id, generation) = self
            .tokens
            .parse_refresh(refresh_token)
            .ok_or(Error::InvalidToken)?;
        let state = self
            .store
            .session_state(&session_id)
            .await?
            .ok_or(Error::InvalidToken)?;
        if !state.is_active() {
            return Err(Error::InvalidToken);
        }
        if generation != state.generation {
            return self.revoke_on_reuse(&session_id, &state.user_id).await;
        }
        let rotated = match self
            .store
            .rotate_session(&session_id, generation, Utc::now() + self.refresh_ttl)
            .await
        {
            Ok(rotated) => rotated,
            // A concurrent rotation with the same token won the race: that is a reuse too.
            Err(StoreError::Conflict) => None,
            Err(e) => return Err(e.into()),
        };
        match rotated {
            Some(next) => {
                let role = next
                    .role
                    .as_deref()
                    .and_then(Role::parse)
                    .ok_or(Error::InvalidToken)?;
                self.pair(&next.user_id, role, &session_id, next.generation)
            }
            None => self.revoke_on_reuse(&session_id, &state.user_id).await,
        }
    }

    async fn revoke_on_reuse(&self, session_id: &str, user_id: &str) -> Result<TokenPair> {
        tracing::warn!(
            session.id = session_id,
            user.id = user_id,
            "refresh token reused; session revoked"
        );
        self.revoke(session_id, user_id).await?;
        Err(Error::InvalidToken)
    }

    /// Revokes one session of `user_id`.
    pub async fn revoke(&self, session_id: &str, user_id: &str) -> Result<()> {
        self.store.revoke_session(session_id, user_id).await?;
        self.mark_revoked(&[session_id.to_string()]).await;
        Ok(())
    }

    /// Revokes every session of `user_id` but `keep`.
    pub async fn revoke_all(&self, user_id: &str, keep: Option<&str>) -> Result<()> {
        let revoked = self.store.revoke_user_sessions(user_id, keep).await?;
        self.mark_revoked(&revoked).await;
        Ok(())
    }

    /// Overwrites the cached markers of sessions that are gone from the database.
    pub async fn mark_revoked(&self, session_ids: &[String]) {
        for id in session_ids {
            self.cache
                .set(&marker_key(id), REVOKED, self.revoked_marker_ttl())
                .await;
        }
    }

    /// A revoked marker only has to outlive the access tokens of that session.
    fn revoked_marker_ttl(&self) -> Duration {
        self.tokens.access_ttl() + Duration::from_secs(60)
    }

    fn pair(
        &self,
        user_id: &str,
        role: Role,
        session_id: &str,
        generation: i64,
    ) -> Result<TokenPair> {
        Ok(TokenPair {
            session_id: session_id.to_string(),
            access_token: self
                .tokens
                .issue_access(user_id, role.as_str(), session_id)?,
            access_ttl: self.tokens.access_ttl(),
            refresh_token: self.tokens.refresh_token(session_id, generation),
            refresh_ttl: self.refresh_ttl,
        })
    }
}
