//! Access tokens (HS256 JWTs) and refresh tokens (session id, generation and a MAC).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::config::Secret;

const ISSUER: &str = "storefront";

/// What an access token says: who, with which role, through which session, until when.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    pub sub: String,
    pub role: String,
    pub sid: String,
    pub iat: u64,
    pub exp: u64,
    pub iss: String,
}

pub struct TokenIssuer {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    refresh_key: Vec<u8>,
    cart_key: Vec<u8>,
    access_ttl: Duration,
}

/// A key derived from the secret for one purpose, so a MAC made for one kind of token (refresh, guest
/// cart, cursor) never passes as another kind.
pub fn derived_key(secret: &Secret, purpose: &[u8]) -> Vec<u8> {
    let mut mac = hmac(secret.expose().as_bytes());
    mac.update(purpose);
    mac.finalize().into_bytes().to_vec()
}

/// An HMAC-SHA256 keyed with `key`. HMAC accepts keys of any length, so this cannot fail.
pub fn hmac(key: &[u8]) -> Hmac<Sha256> {
    <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes keys of any length")
}

impl TokenIssuer {
    pub fn new(secret: &Secret, access_ttl: Duration) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "sub", "iss"]);
        validation.leeway = 5;
        // A separate key for refresh-token MACs, derived so that neither token can stand in for the other.
        Self {
            encoding: EncodingKey::from_secret(secret.expose().as_bytes()),
            decoding: DecodingKey::from_secret(secret.expose().as_bytes()),
            validation,
            refresh_key: derived_key(secret, b"storefront refresh token key"),
            cart_key: derived_key(secret, b"storefront guest cart token key"),
            access_ttl,
        }
    }

    pub fn access_ttl(&self) -> Duration {
        self.access_ttl
    }

    /// Signs an access token for one session.
    pub fn issue_access(
        &self,
        user_id: &str,
        role: &str,
        session_id: &str,
    ) -> anyhow::Result<String> {
        let now = unix_now();
        let claims = AccessClaims {
            sub: user_id.to_string(),
            role: role.to_string(),
            sid: session_id.to_string(),
            iat: now,
            exp: now + self.access_ttl.as_secs(),
            iss: ISSUER.to_string(),
        };
        Ok(jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &self.encoding,
        )?)
    }

    /// The claims of a token this service signed and that has not expired; `None` for anything else
    /// (other algorithms, `alg: none`, bad signature, wrong issuer, expired).
    pub fn verify_access(&self, token: &str) -> Option<AccessClaims> {
        jsonwebtoken::decode::<AccessClaims>(token, &self.decoding, &self.validation)
            .ok()
            .map(|data| data.claims)
    }

    pub fn refresh_token(&self, session_id: &str, generation: i64) -> String {
        let mac = self
            .refresh_mac(session_id, generation)
            .finalize()
            .into_bytes();
        format!("{session_id}.{generation}.{}", URL_SAFE_NO_PAD.encode(mac))
    }

    /// Session id and generation of a refresh token this service made; `None` for a forgery.
    pub fn parse_refresh(&self, token: &str) -> Option<(String, i64)> {
        let mut parts = token.splitn(3, '.');
        let (session_id, generation, mac) = (parts.next()?, parts.next()?, parts.next()?);
        let generation: i64 = generation.parse().ok().filter(|g| *g >= 0)?;
        let mac = URL_SAFE_NO_PAD.decode(mac).ok()?;
        self.refresh_mac(session_id, generation)
            .verify_slice(&mac)
            .ok()?;
        Some((session_id.to_string(), generation))
    }

    /// A guest cart's token: its id and a MAC, so only carts this service made are accepted.
    pub fn cart_token(&self, cart_id: &str) -> String {
        let mac = self.cart_mac(cart_id).finalize().into_bytes();
        format!("{cart_id}.{}", URL_SAFE_NO_PAD.encode(mac))
    }

    /// The guest cart id a genuine cart token names.
    pub fn parse_cart_token(&self, token: &str) -> Option<String> {
        let (cart_id, mac) = token.split_once('.')?;
        let mac = URL_SAFE_NO_PAD.decode(mac).ok()?;
        self.cart_mac(cart_id).verify_slice(&mac).ok()?;
        Some(cart_id.to_string())
    }

    fn cart_mac(&self, cart_id: &str) -> Hmac<Sha256> {
        let mut mac = hmac(&self.cart_key);
        mac.update(cart_id.as_bytes());
        mac
    }

    fn refresh_mac(&self, session_id: &str, generation: i64) -> Hmac<Sha256> {
        let mut mac = hmac(&self.refresh_key);
        mac.update(session_id.as_bytes());
        mac.update(b".");
        mac.update(generation.to_string().as_bytes());
        mac
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issuer() -> TokenIssuer {
        TokenIssuer::new(&Secret::new("k".repeat(32)), Duration::from_secs(60))
    }

    #[test]
    fn cart_tokens_round_trip_and_refuse_forgeries() {
        let issuer = issuer();
        let token = issuer.cart_token("guest_abc");
        assert_eq!(
            issuer.parse_cart_token(&token).as_deref(),
            Some("guest_abc")
        );
        let forged = token.replace("guest_abc", "guest_abd");
        assert_eq!(issuer.parse_cart_token(&forged), None);
        // A refresh token's MAC is made with another key: it never passes as a cart token.
        let refresh = issuer.refresh_token("guest_abc", 0);
        let (id, mac) = (
            refresh.split('.').next().unwrap(),
            refresh.rsplit('.').next().unwrap(),
        );
        assert_eq!(issuer.parse_cart_token(&format!("{id}.{mac}")), None);
        assert_eq!(issuer.parse_cart_token("no-dot"), None);
    }

    #[test]
    fn access_tokens_round_trip_and_refuse_tampering() {
        let issuer = issuer();
        let token = issuer.issue_access("u1", "customer", "s1").unwrap();
        let claims = issuer.verify_access(&token).unwrap();
        assert_eq!((claims.sub.as_str(), claims.sid.as_str()), ("u1", "s1"));

        let other = TokenIssuer::new(&Secret::new("x".repeat(32)), Duration::from_secs(60));
        assert!(other.verify_access(&token).is_none());

        // alg: none with the same claims
        let payload = token.split('.').nth(1).unwrap();
        let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        assert!(
            issuer
                .verify_access(&format!("{none_header}.{payload}."))
                .is_none()
        );
    }

    #[test]
    fn refresh_tokens_carry_a_mac() {
        let issuer = issuer();
        let token = issuer.refresh_token("abc", 3);
        assert_eq!(issuer.parse_refresh(&token), Some(("abc".into(), 3)));
        assert_eq!(issuer.parse_refresh(&token.replace(".3.", ".4.")), None);
        assert_eq!(issuer.parse_refresh("abc.3.AAAA"), None);
        assert_eq!(issuer.parse_refresh("garbage"), None);
    }
}
