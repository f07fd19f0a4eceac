//! The NextBuy backend's JSON shapes: money as two-decimal strings of pounds, Sequelize timestamps,
//! and the request fields it read.

use serde_json::{Value, json};

use crate::auth::Principal;
use crate::domain::{MAX_PRICE_MINOR, Order, Product};
use crate::error::Error;
use crate::services::accounts::Account;
use crate::services::cart::Cart;
use crate::services::catalog::ProductDraft;

pub(super) fn product_json(p: &Product) -> Value {
    json!({
        "id": p.id.get(),
        "name": p.name,
        "description": p.description,
        "price": major_units(p.price),
        "stock_quantity": p.stock(),
        "image_url": p.image_url,
        "createdAt": sequelize_time(p.created_at),
        "updatedAt": sequelize_time(p.updated_at),
    })
}

/// Minor units as the original sent money: a PostgreSQL DECIMAL through Sequelize, i.e. a string of
/// pounds with two decimals (`"25.00"`, `"15.99"`). Integer arithmetic: no float touches money.
pub(super) fn major_units(minor: i64) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    let abs = minor.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}

/// A timestamp as Sequelize serialises one: ISO 8601 in UTC with milliseconds (`2026-11-01T10:00:00.000Z`).
pub(super) fn sequelize_time(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The original sent prices as pounds, as a number or a numeric string; converted to pence once, here.
pub(super) fn price_from_major(value: &Value) -> Result<i64, Error> {
    let pounds = match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    match pounds {
        Some(p) if p.is_finite() && p >= 0.0 && p * 100.0 <= MAX_PRICE_MINOR as f64 => {
            Ok((p * 100.0).round() as i64)
        }
        _ => Err(Error::validation(
            "price",
            "must be a number of pounds, e.g. 15.99",
        )),
    }
}

pub(super) fn int_field(body: &Value, field: &'static str) -> Result<i64, Error> {
    match &body[field] {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .ok_or_else(|| Error::validation(field, "must be a whole number"))
}

pub(super) fn str_field<'a>(body: &'a Value, field: &'static str) -> Result<&'a str, Error> {
    body[field]
        .as_str()
        .ok_or_else(|| Error::validation(field, "is required"))
}

pub(super) fn draft_from(body: &Value) -> Result<ProductDraft, Error> {
    Ok(ProductDraft {
        name: str_field(body, "name")?.to_string(),
        description: body["description"].as_str().unwrap_or_default().to_string(),
        category: body["category"].as_str().unwrap_or_default().to_string(),
        price: price_from_major(&body["price"])?,
        currency: None,
        stock: Some(int_field(body, "stock_quantity")?),
        image_url: body["image_url"].as_str().unwrap_or_default().to_string(),
        options: Vec::new(),
        variants: None,
    })
}

pub(super) fn user_json(account: &Account) -> Value {
    json!({
        "id": account.id.as_str(),
        "email": account.email,
        "name": account.name,
        "address": account.address,
        "role": account.role.as_str(),
        "created_at": account.created_at,
    })
}

pub(super) fn cart_items_json(cart: &Cart, cart_id: &str) -> Value {
    Value::Array(
        cart.lines
            .iter()
            .map(|l| {
                json!({
                    "id": l.variant_id.get(),
                    "cartId": cart_id,
                    "productId": l.product_id.get(),
                    "quantity": l.quantity,
                    "product": {"name": l.name, "price": major_units(l.unit_price), "image_url": l.image_url},
                })
            })
            .collect(),
    )
}

pub(super) fn cart_json(cart: &Cart, principal: &Principal) -> Value {
    json!({
        "id": principal.user_id().as_str(),
        "userId": principal.user_id().as_str(),
        "items": cart_items_json(cart, principal.user_id().as_str()),
        "total": major_units(cart.subtotal),
    })
}

pub(super) fn order_json(order: &Order) -> Value {
    json!({
        "id": order.id.to_string(),
        "user_id": order.user_id.as_str(),
        "status": order.status.as_str(),
        "total_amount": major_units(order.subtotal),
        "shipping_address": order.shipping_address,
        "created_at": order.created_at,
        "items": order.lines.iter().map(|l| json!({
            "product_id": l.product_id.get(),
            "name": l.name,
            "quantity": l.quantity,
            "price": major_units(l.unit_price),
        })).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::major_units;

    #[test]
    fn money_is_a_two_decimal_string_of_pounds() {
        assert_eq!(major_units(2500), "25.00");
        assert_eq!(major_units(1599), "15.99");
        assert_eq!(major_units(5), "0.05");
        assert_eq!(major_units(0), "0.00");
        assert_eq!(major_units(-150), "-1.50");
        assert_eq!(major_units(100_000_000), "1000000.00");
    }
}
