//! Pagination cursors: opaque to clients, tamper-evident, versioned.
//!
//! A cursor is `base64url(version ‖ kind ‖ 0 ‖ payload ‖ tag)`: `payload` is the JSON of where a page
//! ended, `kind` names the listing (a catalog cursor never passes as an order cursor), and `tag` is the
//! first 16 bytes of an HMAC-SHA256 over everything before it, keyed with a key derived from
//! `JWT_SECRET` for cursors alone. A cursor that was edited, forged, cut short or made by another
//! deployment fails the tag check before anything in it is read; listings then still decode the
//! payload into typed keys and check their ranges, so even a cursor that verifies never carries a
//! value the database cannot take.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::Sha256;

use crate::auth;
use crate::error::Error;

const VERSION: u8 = 1;
const TAG_LEN: usize = 16;
/// Longest cursor text accepted; a catalog cursor with a 200-character search is far below it.
const MAX_LEN: usize = 2048;

/// Signs and verifies cursors with one key.
#[derive(Clone)]
pub struct CursorCodec {
    key: Vec<u8>,
}

impl std::fmt::Debug for CursorCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CursorCodec([redacted])")
    }
}

impl CursorCodec {
    /// `key`: a key for cursors only (`auth::derived_key`).
    pub fn new(key: Vec<u8>) -> Self {
        Self { key }
    }

    pub fn encode<T: Serialize>(&self, kind: &str, payload: &T) -> String {
        let mut bytes = vec![VERSION];
        bytes.extend_from_slice(kind.as_bytes());
        bytes.push(0);
        // Serializing our own plain structs cannot fail; an empty payload would only fail to decode.
        bytes.extend(serde_json::to_vec(payload).unwrap_or_default());
        let tag = self.mac(&bytes).finalize().into_bytes();
        bytes.extend_from_slice(&tag[..TAG_LEN]);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// The payload of a cursor this service made for `kind`; a validation error on `field` for
    /// anything else.
    pub fn decode<T: DeserializeOwned>(&self, kind: &str, text: &str) -> Result<T, Error> {
        let invalid = || Error::validation("cursor", "is not a cursor this listing gave out");
        if text.len() > MAX_LEN {
            return Err(invalid());
        }
        let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| invalid())?;
        let signed_len = bytes.len().checked_sub(TAG_LEN).ok_or_else(invalid)?;
        let (signed, tag) = bytes.split_at(signed_len);
        self.mac(signed)
            .verify_truncated_left(tag)
            .map_err(|_| invalid())?;
        let rest = signed
            .strip_prefix(&[VERSION])
            .and_then(|rest| rest.strip_prefix(kind.as_bytes()))
            .and_then(|rest| rest.strip_prefix(&[0]))
            .ok_or_else(invalid)?;
        serde_json::from_slice(rest).map_err(|_| invalid())
    }

    fn mac(&self, bytes: &[u8]) -> Hmac<Sha256> {
        let mut mac = auth::hmac(&self.key);
        mac.update(bytes);
        mac
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn codec() -> CursorCodec {
        CursorCodec::new(b"cursor test key".to_vec())
    }

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Where {
        id: i64,
    }

    #[test]
    fn a_cursor_round_trips_for_its_own_kind_only() {
        let text = codec().encode("a", &Where { id: 7 });
        assert_eq!(
            codec().decode::<Where>("a", &text).unwrap(),
            Where { id: 7 }
        );
        assert!(codec().decode::<Where>("b", &text).is_err());
        let other = CursorCodec::new(b"another deployment".to_vec());
        assert!(other.decode::<Where>("a", &text).is_err());
    }

    proptest! {
        /// Any text at all: an error naming `cursor`, never a panic.
        #[test]
        fn arbitrary_text_is_refused(text in ".{0,300}") {
            let err = codec().decode::<Where>("a", &text).unwrap_err();
            prop_assert!(err.to_string().starts_with("cursor:"));
        }

        /// Arbitrary bytes, encoded as a client would send them: refused, since no tag matches.
        #[test]
        fn arbitrary_bytes_are_refused(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            prop_assert!(codec().decode::<Where>("a", &URL_SAFE_NO_PAD.encode(&bytes)).is_err());
        }

        /// Any one byte of a genuine cursor changed: refused.
        #[test]
        fn an_edited_cursor_is_refused(id in any::<i64>(), at in any::<prop::sample::Index>(), flip in 1u8..) {
            let text = codec().encode("a", &Where { id });
            let mut bytes = URL_SAFE_NO_PAD.decode(&text).unwrap();
            let i = at.index(bytes.len());
            bytes[i] ^= flip;
            prop_assert!(codec().decode::<Where>("a", &URL_SAFE_NO_PAD.encode(&bytes)).is_err());
        }
    }
}
