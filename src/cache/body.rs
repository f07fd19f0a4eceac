//! A response body as it is sent, kept in the cache as one value: the bytes, their ETag, and past a
//! threshold their gzip, made once when the body is made. A hit is answered with these bytes as they
//! are: nothing is parsed, serialized, hashed or compressed per request.

use std::io::Write as _;

use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use sha2::{Digest, Sha256};

/// Bodies shorter than this are sent as they are: gzip would save less than its own framing costs.
pub const GZIP_MIN_BYTES: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Body {
    /// A strong ETag, quotes included: `"` + 32 hex digits of the body's SHA-256 + `"`.
    etag: Bytes,
    plain: Bytes,
    /// `None` below `GZIP_MIN_BYTES`, or when gzip would not be smaller.
    gzip: Option<Bytes>,
}

impl Body {
    pub fn new(plain: Vec<u8>) -> Self {
        let digest = Sha256::digest(&plain);
        let etag = Bytes::from(format!("\"{}\"", hex::encode(&digest[..16])));
        let gzip = (plain.len() >= GZIP_MIN_BYTES)
            .then(|| gzip(&plain))
            .filter(|z| z.len() < plain.len())
            .map(Bytes::from);
        Self {
            etag,
            plain: Bytes::from(plain),
            gzip,
        }
    }

    pub fn etag(&self) -> &Bytes {
        &self.etag
    }

    pub fn plain(&self) -> &Bytes {
        &self.plain
    }

    pub fn gzip(&self) -> Option<&Bytes> {
        self.gzip.as_ref()
    }

    /// The cache value: `[etag length: u8][etag][plain length: u32 LE][plain][gzip, possibly empty]`.
    pub fn encode(&self) -> Vec<u8> {
        let gzip = self.gzip.as_deref().unwrap_or_default();
        let mut out = Vec::with_capacity(1 + self.etag.len() + 4 + self.plain.len() + gzip.len());
        out.push(self.etag.len() as u8);
        out.extend_from_slice(&self.etag);
        out.extend_from_slice(&(self.plain.len() as u32).to_le_bytes());
        out.extend_from_slice(&self.plain);
        out.extend_from_slice(gzip);
        out
    }

    /// A value `encode` made, sliced without copying; `None` for anything else (a value another
    /// build wrote, or a truncated one), which the caller treats as a miss.
    pub fn decode(value: Bytes) -> Option<Self> {
        let etag_len = usize::from(*value.first()?);
        let etag_end = 1 + etag_len;
        let plain_start = etag_end + 4;
        let len_bytes: [u8; 4] = value.get(etag_end..plain_start)?.try_into().ok()?;
        let plain_end = plain_start.checked_add(u32::from_le_bytes(len_bytes) as usize)?;
        if plain_end > value.len() || etag_len < 2 {
            return None;
        }
        let etag = value.slice(1..etag_end);
        if etag.first() != Some(&b'"') || etag.last() != Some(&b'"') {
            return None;
        }
        Some(Self {
            etag,
            plain: value.slice(plain_start..plain_end),
            gzip: (plain_end < value.len()).then(|| value.slice(plain_end..)),
        })
    }
}

fn gzip(plain: &[u8]) -> Vec<u8> {
    // The fast level: JSON still shrinks 4-6x, and a cache miss pays for it.
    let mut encoder = GzEncoder::new(Vec::with_capacity(plain.len() / 4), Compression::fast());
    encoder
        .write_all(plain)
        .and_then(|()| encoder.finish())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use super::*;

    #[test]
    fn a_body_survives_the_cache_and_its_gzip_is_the_body() {
        let json = serde_json::to_vec(&serde_json::json!({
            "items": (0..200).map(|i| format!("product {i}")).collect::<Vec<_>>()
        }))
        .unwrap();
        let body = Body::new(json.clone());
        assert_eq!(body.plain().as_ref(), json.as_slice());
        let back = Body::decode(Bytes::from(body.encode())).unwrap();
        assert_eq!(back, body);
        let mut unzipped = Vec::new();
        flate2::read::GzDecoder::new(back.gzip().unwrap().as_ref())
            .read_to_end(&mut unzipped)
            .unwrap();
        assert_eq!(unzipped, json);
        assert!(back.etag().starts_with(b"\"") && back.etag().len() == 34);
    }

    #[test]
    fn a_small_body_is_not_compressed_and_bodies_differ_in_their_etags() {
        let a = Body::new(b"{\"items\":[]}".to_vec());
        let b = Body::new(b"{\"items\":[1]}".to_vec());
        assert!(a.gzip().is_none());
        assert_ne!(a.etag(), b.etag());
        assert_eq!(Body::decode(Bytes::from(a.encode())), Some(a));
    }

    #[test]
    fn anything_else_in_the_cache_is_a_miss() {
        for junk in [
            &b""[..],
            b"x",
            b"\x02\"\"\x05\x00\x00\x00abc",
            b"\x22not an etag",
        ] {
            assert_eq!(Body::decode(Bytes::copy_from_slice(junk)), None);
        }
    }
}
