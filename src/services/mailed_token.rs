//! The single-use tokens a link in a mail carries (a password reset, an email check): 32 random bytes
//! in URL-safe base64. The store keeps only a token's key, its SHA-256, so its tables never hold a
//! usable token.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// A fresh token to mail, and the key the store keeps it under.
pub struct MailedToken {
    pub token: String,
    pub key: String,
}

impl MailedToken {
    pub fn generate() -> Self {
        let bytes: [u8; 32] = rand::random();
        let token = URL_SAFE_NO_PAD.encode(bytes);
        Self {
            key: key_of(&token),
            token,
        }
    }

    /// The key of a token a client sent back, or `None` when it cannot be one of ours (empty, or
    /// longer than any we make): refused without a lookup.
    pub fn key_of_sent(token: &str) -> Option<String> {
        (!token.is_empty() && token.len() <= 100).then(|| key_of(token))
    }
}

fn key_of(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_fresh_and_only_their_keys_are_kept() {
        let a = MailedToken::generate();
        let b = MailedToken::generate();
        assert_ne!(a.token, b.token);
        assert_eq!(a.token.len(), 43);
        assert_eq!(MailedToken::key_of_sent(&a.token), Some(a.key.clone()));
        assert_ne!(a.key, a.token);
        assert_eq!(MailedToken::key_of_sent(""), None);
        assert_eq!(MailedToken::key_of_sent(&"x".repeat(101)), None);
    }
}
