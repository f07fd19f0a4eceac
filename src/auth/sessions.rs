//! Sessions: opened at login, checked on every request, rotated on refresh, revoked at logout.
//!
//! The state lives in SurrealDB; Redis (or the in-process cache) holds a short-lived marker per session
//! so that checking a token does not cost a database round trip: "active, of this user, with this
//! role", or "revoked". A revocation writes the database first, then overwrites the marker, and readers
//! only ever fill an absent marker, so a revoked session's token is refused on the next request on every
//! instance sharing the cache. A token is only as good as its session: its user and role must be the
//! session's (from the marker or the database), and a token that fails that check changes nothing,
//! since the marker a reader fills always says what the database holds, never what the token claims.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;

use crate::auth::{Principal, TokenIssuer};
use crate::domain::{GuestCartId, Role, SessionId, UserId};
use crate::error::{Error, Result};
use crate::store::sessions::{NewSession, SessionState};
use crate::store::{Store, StoreError};

/// How long an "active" marker may be trusted before the database is asked again.
const ACTIVE_MARKER_TTL: Duration = Duration::from_secs(60);
const REVOKED: &[u8] = b"0";

/// The marker of a live session: `1 <role> <user id>`.
fn active_marker(user_id: &str, role: Role) -> Vec<u8> {
    format!("1 {} {user_id}", role.as_str()).into_bytes()
}

/// What a cached marker says: `Some(Some((user, role)))` active, `Some(None)` revoked, `None` for a
/// marker this version cannot read (then the database is asked, and nothing is cached over it).
fn read_marker(marker: &[u8]) -> Option<Option<(String, Role)>> {
    if marker == REVOKED {
        return Some(None);
    }
    let text = std::str::from_utf8(marker).ok()?;
    let mut parts = text.splitn(3, ' ');
    match (parts.next()?, parts.next()?, parts.next()?) {
        ("1", role, user_id) if !user_id.is_empty() => {
            Some(Some((user_id.to_string(), Role::parse(role)?)))
        }
        _ => None,
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
    pub session_id: SessionId,
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
    refresh_grace: Duration,
}

/// One of a user's live sessions, as they review their signed-in devices.
#[derive(Debug, Clone)]
pub struct SessionSummary {
    pub id: String,
    pub created_at: chrono::DateTime<Utc>,
    pub last_used_at: chrono::DateTime<Utc>,
    pub user_agent: Option<String>,
    /// The network the session was opened from (IPv4 /24, IPv6 /48), never the full address.
    pub ip_prefix: Option<String>,
    pub current: bool,
}

/// Which sessions a sign-out ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogoutScope {
    /// The session making the request.
    Local,
    /// Every other session of the user.
    Others,
    /// Every session of the user.
    Global,
}

fn marker_key(session_id: &SessionId) -> String {
    format!("session:{session_id}")
}

impl SessionService {
    pub fn new(
        store: Store,
        cache: crate::cache::Cache,
        tokens: Arc<TokenIssuer>,
        refresh_ttl: Duration,
        refresh_grace: Duration,
    ) -> Self {
        Self {
            store,
            cache,
            tokens,
            refresh_ttl,
            refresh_grace,
        }
    }

    /// Opens a new session for a user who just proved who they are.
    pub async fn open(
        &self,
        user_id: &UserId,
        role: Role,
        client: &ClientInfo,
    ) -> Result<TokenPair> {
        let session_id = SessionId::from_trusted(uuid::Uuid::new_v4().to_string());
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

    /// The principal behind an access token, if the token is genuine, unexpired, its session live, and
    /// the session's user and role the ones the token names.
    pub async fn authenticate(&self, access_token: &str) -> Result<Principal> {
        let claims = self
            .tokens
            .verify_access(access_token)
            .ok_or(Error::InvalidToken)?;
        let principal = Principal::new(
            UserId::from_trusted(claims.sub),
            Role::parse(&claims.role).ok_or(Error::InvalidToken)?,
            SessionId::from_trusted(claims.sid),
        );
        if !self.is_active(&principal).await? {
            return Err(Error::InvalidToken);
        }
        Ok(principal)
    }

    /// Whether the principal's session is still signed in (for long-lived streams, which outlive the
    /// access token that opened them). A database error counts as yes: the next check decides.
    pub async fn still_active(&self, principal: &Principal) -> bool {
        self.is_active(principal).await.unwrap_or(true)
    }

    /// Whether the principal's session is live and is the principal's (same user, same role): from
    /// the cached marker, or from the database (then cached as the database has it).
    async fn is_active(&self, principal: &Principal) -> Result<bool> {
        let key = marker_key(principal.session_id());
        let cached = self.cache.get(&key).await;
        if let Some(known) = cached.as_deref().and_then(read_marker) {
            return Ok(known.is_some_and(|(user_id, role)| {
                user_id == principal.user_id().as_str() && role == principal.role()
            }));
        }
        let state = self.store.session_state(principal.session_id()).await?;
        let owner = state.filter(SessionState::is_active).and_then(|s| {
            let role = s.role.as_deref().and_then(Role::parse)?;
            Some((s.user_id, role))
        });
        let (marker, ttl) = match &owner {
            Some((user_id, role)) => (active_marker(user_id, *role), ACTIVE_MARKER_TTL),
            None => (REVOKED.to_vec(), self.revoked_marker_ttl()),
        };
        // Only an absent marker is filled: an unreadable one (another version's) is left to expire.
        if cached.is_none() {
            self.cache.set_if_absent(&key, &marker, ttl).await;
        }
        Ok(owner.is_some_and(|(user_id, role)| {
            user_id == principal.user_id().as_str() && role == principal.role()
        }))
    }

    /// Exchanges a refresh token for a new pair. A token that was already exchanged (an older
    /// generation) means two parties hold it: the whole session is revoked. One exception: the
    /// generation just before the current one, presented within the grace window after the rotation,
    /// is a second tab that refreshed at the same moment as the first: it gets the current pair.
    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenPair> {
        let (session_id, generation) = self
            .tokens
            .parse_refresh(refresh_token)
            .ok_or(Error::InvalidToken)?;
        let session_id = SessionId::from_trusted(session_id);
        let state = self
            .store
            .session_state(&session_id)
            .await?
            .ok_or(Error::InvalidToken)?;
        if !state.is_active() {
            return Err(Error::InvalidToken);
        }
        if generation != state.generation {
            return self.reused(&session_id, generation, state).await;
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
            Some(next) => self.current_pair(&session_id, &next),
            None => match self.store.session_state(&session_id).await? {
                Some(now) if now.is_active() => self.reused(&session_id, generation, now).await,
                _ => Err(Error::InvalidToken),
            },
        }
    }

    /// A refresh token of an older generation than `state`'s: the current pair within the grace
    /// window for the one just before, the end of the session otherwise.
    async fn reused(
        &self,
        session_id: &SessionId,
        generation: i64,
        state: SessionState,
    ) -> Result<TokenPair> {
        let in_grace = u64::try_from(state.rotated_secs_ago)
            .is_ok_and(|secs| Duration::from_secs(secs) < self.refresh_grace);
        if generation + 1 == state.generation && in_grace {
            return self.current_pair(session_id, &state);
        }
        self.revoke_on_reuse(session_id, &UserId::from_trusted(state.user_id))
            .await
    }

    fn current_pair(&self, session_id: &SessionId, state: &SessionState) -> Result<TokenPair> {
        let role = state
            .role
            .as_deref()
            .and_then(Role::parse)
            .ok_or(Error::InvalidToken)?;
        let user_id = UserId::from_trusted(state.user_id.clone());
        self.pair(&user_id, role, session_id, state.generation)
    }

    /// A guest cart's token (signed with a key of its own, derived from `JWT_SECRET`).
    pub fn cart_token(&self, cart_id: &GuestCartId) -> String {
        self.tokens.cart_token(cart_id.as_str())
    }

    /// The guest cart a genuine cart token names.
    pub fn guest_cart(&self, token: &str) -> Option<GuestCartId> {
        self.tokens
            .parse_cart_token(token)
            .map(GuestCartId::from_trusted)
    }

    /// The user's live sessions, most recently used first; `current` marks the caller's.
    pub async fn list(&self, user_id: &UserId, current: &SessionId) -> Result<Vec<SessionSummary>> {
        let records = self.store.live_sessions(user_id).await?;
        Ok(records
            .into_iter()
            .map(|r| SessionSummary {
                current: r.id == current.as_str(),
                ip_prefix: r.ip.as_deref().and_then(ip_prefix),
                id: r.id,
                created_at: r.created_at,
                last_used_at: r.last_used_at,
                user_agent: r.user_agent,
            })
            .collect())
    }

    /// Ends one of the user's own live sessions; 404 when there is no such session of theirs.
    pub async fn revoke_own(&self, session_id: &SessionId, user_id: &UserId) -> Result<()> {
        if !self.store.revoke_session(session_id, user_id).await? {
            return Err(Error::NotFound("session"));
        }
        self.mark_revoked(std::slice::from_ref(session_id)).await;
        Ok(())
    }

    /// Signs out the sessions `scope` names, seen from the caller's session.
    pub async fn logout(&self, principal: &Principal, scope: LogoutScope) -> Result<()> {
        match scope {
            LogoutScope::Local => {
                self.revoke(principal.session_id(), principal.user_id())
                    .await
            }
            LogoutScope::Others => {
                self.revoke_all(principal.user_id(), Some(principal.session_id()))
                    .await
            }
            LogoutScope::Global => self.revoke_all(principal.user_id(), None).await,
        }
    }

    async fn revoke_on_reuse(&self, session_id: &SessionId, user_id: &UserId) -> Result<TokenPair> {
        tracing::warn!(
            session.id = %session_id,
            user.id = %user_id,
            "refresh token reused; session revoked"
        );
        self.revoke(session_id, user_id).await?;
        Err(Error::InvalidToken)
    }

    /// Revokes one session of `user_id`.
    pub async fn revoke(&self, session_id: &SessionId, user_id: &UserId) -> Result<()> {
        self.store.revoke_session(session_id, user_id).await?;
        self.mark_revoked(std::slice::from_ref(session_id)).await;
        Ok(())
    }

    /// Revokes every session of `user_id` but `keep`.
    pub async fn revoke_all(&self, user_id: &UserId, keep: Option<&SessionId>) -> Result<()> {
        let revoked = self.store.revoke_user_sessions(user_id, keep).await?;
        self.mark_revoked(&revoked).await;
        Ok(())
    }

    /// Overwrites the cached markers of sessions that are gone from the database.
    pub async fn mark_revoked(&self, session_ids: &[SessionId]) {
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
        user_id: &UserId,
        role: Role,
        session_id: &SessionId,
        generation: i64,
    ) -> Result<TokenPair> {
        Ok(TokenPair {
            session_id: session_id.clone(),
            access_token: self.tokens.issue_access(
                user_id.as_str(),
                role.as_str(),
                session_id.as_str(),
            )?,
            access_ttl: self.tokens.access_ttl(),
            refresh_token: self.tokens.refresh_token(session_id.as_str(), generation),
            refresh_ttl: self.refresh_ttl,
        })
    }
}

/// The network part of an address, for showing where a session came from without storing-and-showing
/// the exact address: IPv4 /24, IPv6 /48. `None` for anything that is not an address.
fn ip_prefix(ip: &str) -> Option<String> {
    match ip.parse::<std::net::IpAddr>().ok()? {
        std::net::IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            Some(format!("{a}.{b}.{c}.0/24"))
        }
        std::net::IpAddr::V6(v6) => {
            let s = v6.segments();
            let net = std::net::Ipv6Addr::new(s[0], s[1], s[2], 0, 0, 0, 0, 0);
            Some(format!("{net}/48"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ip_prefix;

    #[test]
    fn addresses_are_shown_as_their_network() {
        assert_eq!(ip_prefix("203.0.113.77").as_deref(), Some("203.0.113.0/24"));
        assert_eq!(
            ip_prefix("2001:db8:abcd:12::1").as_deref(),
            Some("2001:db8:abcd::/48")
        );
        assert_eq!(ip_prefix("not an address"), None);
    }
}
