use std::fmt;

use super::Invalid;

/// A candidate password that meets the length rules. Never printed.
#[derive(Clone)]
pub struct Password(String);

pub const MIN_CHARS: usize = 8;
/// Bounded so a client cannot make the server hash megabytes.
pub const MAX_CHARS: usize = 128;

impl Password {
    /// Checks a new password (registration, change).
    pub fn parse(field: &'static str, raw: String) -> Result<Self, Invalid> {
        let chars = raw.chars().count();
        if chars < MIN_CHARS {
            return Err(Invalid::new(
                field,
                format!("must be at least {MIN_CHARS} characters"),
            ));
        }
        if chars > MAX_CHARS {
            return Err(Invalid::new(
                field,
                format!("must be at most {MAX_CHARS} characters"),
            ));
        }
        if raw.trim().is_empty() {
            return Err(Invalid::new(field, "must not be only spaces"));
        }
        Ok(Self(raw))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::Password;

    #[test]
    fn enforces_length() {
        assert!(Password::parse("password", "short".into()).is_err());
        assert!(Password::parse("password", " ".repeat(9)).is_err());
        assert!(Password::parse("password", "x".repeat(129)).is_err());
        assert!(Password::parse("password", "correct horse".into()).is_ok());
        assert!(
            !format!("{:?}", Password::parse("p", "secret-pass".into()).unwrap())
                .contains("secret")
        );
    }
}
