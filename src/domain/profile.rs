use super::Invalid;

/// A person's display name: 1-100 characters after trimming, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayName(String);

impl DisplayName {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        Ok(Self(bounded_text("name", raw, 1, 100)?))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// A postal address as one free-text field (the NextBuy front-end sends it that way): at most 500 characters.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Address(String);

impl Address {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        Ok(Self(bounded_text("address", raw, 0, 500)?))
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// Trimmed text of `min` to `max` characters with no control characters but newlines: the rule every
/// free-text field shares (names, addresses, descriptions).
pub fn bounded_text(
    field: &'static str,
    raw: &str,
    min: usize,
    max: usize,
) -> Result<String, Invalid> {
    let text = raw.trim();
    let chars = text.chars().count();
    if chars < min {
        return Err(Invalid::new(field, "must not be empty"));
    }
    if chars > max {
        return Err(Invalid::new(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    // Newlines are fine in an address; other control characters are not text anyone types.
    if text.chars().any(|c| c.is_control() && c != '\n') {
        return Err(Invalid::new(field, "must not contain control characters"));
    }
    Ok(text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(DisplayName::parse("  Ann ").unwrap().as_str(), "Ann");
        assert!(DisplayName::parse("   ").is_err());
        assert!(DisplayName::parse(&"n".repeat(101)).is_err());
        assert!(DisplayName::parse("a\u{0}b").is_err());
        assert!(Address::parse("").is_ok());
        assert!(Address::parse("1 High St\nLondon").is_ok());
    }
}
