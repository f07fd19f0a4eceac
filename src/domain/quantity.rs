use super::Invalid;

pub const MAX_QUANTITY: i64 = 999;
/// Largest stock level a product may have.
pub const MAX_STOCK: i64 = 1_000_000_000;

/// How many of one product a cart line or order line holds: 1-999.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quantity(i64);

impl Quantity {
    pub fn parse(field: &'static str, value: i64) -> Result<Self, Invalid> {
        if !(1..=MAX_QUANTITY).contains(&value) {
            return Err(Invalid::new(
                field,
                format!("must be between 1 and {MAX_QUANTITY}"),
            ));
        }
        Ok(Self(value))
    }

    pub fn get(self) -> i64 {
        self.0
    }

    /// The refusal of a write that would take a cart or order line past `MAX_QUANTITY` units: every
    /// path that grows a line checks that limit in its transaction and answers with this.
    pub fn line_limit_exceeded() -> Invalid {
        Invalid::new(
            "quantity",
            format!("a line holds at most {MAX_QUANTITY} units"),
        )
    }
}

/// A stock level: 0 up to `MAX_STOCK`.
pub fn parse_stock(field: &'static str, value: i64) -> Result<i64, Invalid> {
    if !(0..=MAX_STOCK).contains(&value) {
        return Err(Invalid::new(
            field,
            format!("must be between 0 and {MAX_STOCK}"),
        ));
    }
    Ok(value)
}
