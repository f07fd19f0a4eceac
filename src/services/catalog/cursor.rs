//! The catalog's cursor: where a page ended, signed (`services::cursor`) and decoded into a key typed
//! for the listing's sort.

use crate::domain::{Price, Product, ProductId, ProductSort};
use crate::error::{Error, Result};
use crate::services::cursor::CursorCodec;
use crate::store::products::SortKey;

const KIND: &str = "catalog";
/// Product names are at most this long (`parse_name`), so no genuine cursor holds a longer one.
const MAX_NAME_CHARS: usize = 200;

#[derive(serde::Serialize, serde::Deserialize)]
struct Payload {
    /// Fingerprint of the query the cursor belongs to.
    q: String,
    k: SortKey,
    id: i64,
}

/// Where a listing in `sort` order stands after `last`: its key on that sort.
pub fn key_of(sort: ProductSort, last: &Product) -> SortKey {
    match sort {
        ProductSort::Newest => SortKey::Time(last.created_at),
        ProductSort::PriceAsc | ProductSort::PriceDesc => SortKey::Price(last.price),
        ProductSort::Name => SortKey::Name(last.name.clone()),
    }
}

pub fn encode(codec: &CursorCodec, fingerprint: &str, sort: ProductSort, last: &Product) -> String {
    let payload = Payload {
        q: fingerprint.to_string(),
        k: key_of(sort, last),
        id: last.id.get(),
    };
    codec.encode(KIND, &payload)
}

/// The key and product id a cursor of this listing (`fingerprint`, `sort`) ended at.
pub fn decode(
    codec: &CursorCodec,
    text: &str,
    fingerprint: &str,
    sort: ProductSort,
) -> Result<(SortKey, ProductId)> {
    let payload: Payload = codec.decode(KIND, text)?;
    if payload.q != fingerprint {
        return Err(Error::validation(
            "cursor",
            "belongs to a listing with other filters or sort",
        ));
    }
    let key = typed_key(sort, payload.k)?;
    let id = ProductId::new(payload.id).ok_or_else(malformed)?;
    Ok((key, id))
}

/// The key, if it is of the sort's type and within what a product can hold: a time the database
/// can turn into nanoseconds, a price a product may have, a name a product may have.
fn typed_key(sort: ProductSort, key: SortKey) -> Result<SortKey> {
    let fits = match (&sort, &key) {
        (ProductSort::Newest, SortKey::Time(t)) => t.timestamp_nanos_opt().is_some(),
        (ProductSort::PriceAsc | ProductSort::PriceDesc, SortKey::Price(p)) => {
            Price::parse("cursor", *p).is_ok()
        }
        (ProductSort::Name, SortKey::Name(n)) => {
            !n.is_empty() && n.chars().count() <= MAX_NAME_CHARS
        }
        _ => false,
    };
    if fits { Ok(key) } else { Err(malformed()) }
}

fn malformed() -> Error {
    Error::validation("cursor", "is not a cursor this listing gave out")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::MAX_PRICE_MINOR;
    use chrono::{DateTime, Utc};
    use proptest::prelude::*;

    const SORTS: [ProductSort; 4] = ProductSort::ALL;

    fn codec() -> CursorCodec {
        CursorCodec::new(b"catalog cursor test key".to_vec())
    }

    /// A key of any variant with any value, dates across chrono's whole range.
    fn any_key() -> impl Strategy<Value = SortKey> {
        prop_oneof![
            (any::<i64>(), any::<u32>()).prop_map(|(s, n)| SortKey::Time(
                DateTime::<Utc>::from_timestamp(s % 8_000_000_000_000, n % 1_000_000_000)
                    .unwrap_or(DateTime::<Utc>::MAX_UTC)
            )),
            any::<i64>().prop_map(SortKey::Price),
            prop_oneof![Just(i64::MIN), Just(-1), Just(MAX_PRICE_MINOR + 1)]
                .prop_map(SortKey::Price),
            ".{0,300}".prop_map(SortKey::Name),
        ]
    }

    proptest! {
        /// Even a payload signed with the right key (a leaked key, or our own bug) decodes only into
        /// a key of the listing's sort whose value the database can take; anything else is a
        /// validation error on `cursor`.
        #[test]
        fn signed_payloads_decode_only_into_keys_that_fit(key in any_key(), id in any::<i64>()) {
            let text = codec().encode(KIND, &Payload { q: "f".into(), k: key.clone(), id });
            for sort in SORTS {
                match decode(&codec(), &text, "f", sort) {
                    Ok((SortKey::Time(t), got)) => {
                        prop_assert_eq!(sort, ProductSort::Newest);
                        prop_assert!(t.timestamp_nanos_opt().is_some());
                        prop_assert_eq!(got.get(), id);
                    }
                    Ok((SortKey::Price(p), _)) => {
                        prop_assert!(matches!(sort, ProductSort::PriceAsc | ProductSort::PriceDesc));
                        prop_assert!((0..=MAX_PRICE_MINOR).contains(&p));
                    }
                    Ok((SortKey::Name(n), _)) => {
                        prop_assert_eq!(sort, ProductSort::Name);
                        prop_assert!(!n.is_empty() && n.chars().count() <= MAX_NAME_CHARS);
                    }
                    Err(e) => prop_assert!(e.to_string().starts_with("cursor:")),
                }
            }
        }

        /// Arbitrary JSON where the payload goes (signed): never a panic, never a key of another sort.
        #[test]
        fn arbitrary_signed_json_is_refused_or_typed(json in arbitrary_json()) {
            let text = codec().encode(KIND, &json);
            for sort in SORTS {
                if let Ok((key, _)) = decode(&codec(), &text, "f", sort) {
                    prop_assert!(typed_key(sort, key).is_ok());
                }
            }
        }
    }

    fn arbitrary_json() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<f64>().prop_map(serde_json::Value::from),
            ".{0,20}".prop_map(serde_json::Value::from),
            Just(serde_json::Value::from("f")),
            Just(serde_json::Value::from("9999-12-31T23:59:59Z")),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
                prop::collection::btree_map(
                    prop_oneof![
                        Just("q".to_string()),
                        Just("k".to_string()),
                        Just("id".to_string()),
                        Just("Time".to_string()),
                        Just("Price".to_string()),
                        Just("Name".to_string()),
                    ],
                    inner,
                    0..4
                )
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    #[test]
    fn a_genuine_cursor_round_trips() {
        let record = Product {
            id: ProductId::new(5).unwrap(),
            name: "Hat".into(),
            description: String::new(),
            category: String::new(),
            price: 1599,
            currency: "GBP".into(),
            image_url: String::new(),
            images: Vec::new(),
            options: Vec::new(),
            variants: Vec::new(),
            archived: false,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        };
        for sort in SORTS {
            let text = encode(&codec(), "f", sort, &record);
            let (_, id) = decode(&codec(), &text, "f", sort).unwrap();
            assert_eq!(id.get(), 5);
            assert!(decode(&codec(), &text, "other filters", sort).is_err());
        }
    }
}
