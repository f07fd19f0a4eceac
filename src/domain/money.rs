use super::Invalid;

/// The one currency this store sells in. Mixed-currency carts have no meaningful subtotal, so product
/// writes in any other currency are refused.
pub const STORE_CURRENCY: &str = "GBP";

/// Largest price accepted, in minor units (£1,000,000.00): keeps every line and order total far from
/// `i64` overflow (999 units × 1000 lines × this < 2^63).
pub const MAX_PRICE_MINOR: i64 = 100_000_000;

/// A price in minor units (pence). Never a float.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Price(i64);

impl Price {
    pub fn parse(field: &'static str, minor: i64) -> Result<Self, Invalid> {
        if !(0..=MAX_PRICE_MINOR).contains(&minor) {
            return Err(Invalid::new(
                field,
                format!("must be between 0 and {MAX_PRICE_MINOR} minor units"),
            ));
        }
        Ok(Self(minor))
    }

    pub fn minor(self) -> i64 {
        self.0
    }
}

/// Checks a currency code given with a price: the store's currency, in any letter case.
pub fn parse_currency(field: &'static str, code: &str) -> Result<&'static str, Invalid> {
    if code.eq_ignore_ascii_case(STORE_CURRENCY) {
        Ok(STORE_CURRENCY)
    } else {
        Err(Invalid::new(
            field,
            format!("this store sells in {STORE_CURRENCY} only"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_are_bounded_integers() {
        assert!(Price::parse("price", -1).is_err());
        assert!(Price::parse("price", MAX_PRICE_MINOR + 1).is_err());
        assert_eq!(Price::parse("price", 1599).unwrap().minor(), 1599);
        assert_eq!(parse_currency("currency", "gbp").unwrap(), "GBP");
        assert!(parse_currency("currency", "EUR").is_err());
    }
}
