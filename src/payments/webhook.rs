//! Stripe's webhook deliveries: the `Stripe-Signature` check, and the parts of an event that change
//! an order.
//!
//! The signature is HMAC-SHA256, keyed by the endpoint's signing secret, over `"{t}.{raw body}"`;
//! the header carries the timestamp `t` and one or more `v1` signatures (several while a secret is
//! being rolled). A delivery is accepted when its timestamp is within the tolerance of now and one of
//! its `v1` signatures matches, compared in constant time.

use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

/// How far a delivery's timestamp may be from now (Stripe's libraries use five minutes).
pub const TOLERANCE_SECS: i64 = 300;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    #[error("the Stripe-Signature header is missing")]
    Missing,
    #[error("the Stripe-Signature header has no timestamp or no v1 signature")]
    Malformed,
    #[error("the Stripe-Signature timestamp is outside the tolerance")]
    Stale,
    #[error("no v1 signature matches the body")]
    Mismatch,
}

/// Checks a delivery's `Stripe-Signature` header against its raw body at the time `now` (seconds).
pub fn verify_signature(
    header: Option<&str>,
    body: &[u8],
    secret: &str,
    now: i64,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", signature)) => signatures.extend(hex::decode(signature).ok()),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed)?;
    if signatures.is_empty() {
        return Err(SignatureError::Malformed);
    }
    if (now - timestamp).abs() > TOLERANCE_SECS {
        return Err(SignatureError::Stale);
    }
    let mac = {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    };
    // `verify_slice` compares in constant time.
    if signatures
        .iter()
        .any(|signature| mac.clone().verify_slice(signature).is_ok())
    {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// What an event says happened to a PaymentIntent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    Succeeded,
    Failed,
    Canceled,
    /// Any other event type: recorded once and otherwise ignored.
    Other,
}

impl EventKind {
    /// What the event can do to an order's payment: pay it (`succeeded`), mark an attempt failed
    /// (`failed`, for a failure or a cancel alike), or nothing (`other`).
    pub fn effect(&self) -> &'static str {
        match self {
            EventKind::Succeeded => "succeeded",
            EventKind::Failed | EventKind::Canceled => "failed",
            EventKind::Other => "other",
        }
    }
}

/// The parts of a verified event the order's payment needs.
#[derive(Debug, Clone)]
pub struct Event {
    pub id: String,
    /// Stripe's event type, as sent (`payment_intent.succeeded`, `charge.refunded`, ...).
    pub event_type: String,
    pub kind: EventKind,
    pub intent_id: Option<String>,
    /// The order id our checkout put in the intent's metadata.
    pub order_id: Option<String>,
    pub amount: Option<i64>,
    pub currency: Option<String>,
    /// Why a payment failed, as Stripe words it.
    pub error: Option<String>,
}

#[derive(Deserialize)]
struct RawEvent {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    data: RawData,
}

#[derive(Deserialize)]
struct RawData {
    object: RawObject,
}

#[derive(Deserialize)]
struct RawObject {
    id: Option<String>,
    object: Option<String>,
    amount: Option<i64>,
    currency: Option<String>,
    #[serde(default)]
    metadata: Option<serde_json::Map<String, serde_json::Value>>,
    last_payment_error: Option<RawError>,
}

#[derive(Deserialize)]
struct RawError {
    message: Option<String>,
}

impl Event {
    /// Reads a verified body. Only the fields used are required (localstripe's events leave out
    /// some that Stripe's carry, such as `pending_webhooks`).
    pub fn parse(body: &[u8]) -> Result<Self, String> {
        let raw: RawEvent = serde_json::from_slice(body).map_err(|e| e.to_string())?;
        if raw.id.is_empty() || raw.id.len() > 255 {
            return Err("the event id must be 1-255 characters".into());
        }
        let is_intent = raw.data.object.object.as_deref() == Some("payment_intent");
        let kind = match raw.kind.as_str() {
            "payment_intent.succeeded" if is_intent => EventKind::Succeeded,
            "payment_intent.payment_failed" if is_intent => EventKind::Failed,
            "payment_intent.canceled" if is_intent => EventKind::Canceled,
            _ => EventKind::Other,
        };
        let object = raw.data.object;
        let order_id = object
            .metadata
            .as_ref()
            .and_then(|m| m.get("order_id"))
            .and_then(|v| v.as_str())
            .map(str::to_string);
        Ok(Self {
            id: raw.id,
            event_type: raw.kind,
            kind,
            intent_id: object.id.filter(|_| is_intent),
            order_id,
            amount: object.amount,
            currency: object.currency,
            error: object.last_payment_error.and_then(|e| e.message),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(secret: &str, t: i64, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("{t}.").as_bytes());
        mac.update(body);
        hex::encode(mac.finalize().into_bytes())
    }

    #[test]
    fn a_signature_is_checked_against_the_body_time_and_secret() {
        let (secret, body, now) = ("whsec_test", br#"{"id":"evt_1"}"#.as_slice(), 1_700_000_000);
        let good = sign(secret, now, body);
        let header = format!("t={now},v1={good}");
        assert_eq!(
            verify_signature(Some(&header), body, secret, now + 10),
            Ok(())
        );
        // Several v1 signatures (a rolled secret): one match is enough, in any position.
        let other = sign("whsec_old", now, body);
        let both = format!("t={now},v1={other},v0=ignored,v1={good}");
        assert_eq!(verify_signature(Some(&both), body, secret, now), Ok(()));

        assert_eq!(
            verify_signature(None, body, secret, now),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify_signature(Some(&format!("v1={good}")), body, secret, now),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify_signature(Some(&format!("t={now}")), body, secret, now),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify_signature(Some(&header), body, secret, now + TOLERANCE_SECS + 1),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify_signature(Some(&header), br#"{"id":"evt_2"}"#, secret, now),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature(Some(&header), body, "whsec_other", now),
            Err(SignatureError::Mismatch)
        );
        // The timestamp is part of what is signed: moving it breaks the signature.
        let moved = format!("t={},v1={good}", now + 1);
        assert_eq!(
            verify_signature(Some(&moved), body, secret, now),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn an_event_yields_its_intent_and_order() {
        let body = br#"{"id":"evt_1","type":"payment_intent.succeeded","data":{"object":{
            "id":"pi_1","object":"payment_intent","amount":2500,"currency":"gbp",
            "metadata":{"order_id":"0190"}}}}"#;
        let event = Event::parse(body).unwrap();
        assert_eq!(event.kind, EventKind::Succeeded);
        assert_eq!(event.intent_id.as_deref(), Some("pi_1"));
        assert_eq!(event.order_id.as_deref(), Some("0190"));
        assert_eq!(
            (event.amount, event.currency.as_deref()),
            (Some(2500), Some("gbp"))
        );

        let charge = br#"{"id":"evt_2","type":"charge.succeeded","data":{"object":{"id":"ch_1","object":"charge"}}}"#;
        let event = Event::parse(charge).unwrap();
        assert_eq!(event.kind, EventKind::Other);
        assert_eq!(event.event_type, "charge.succeeded");
        assert_eq!(event.intent_id, None);
        assert!(Event::parse(b"{}").is_err());
    }
}
