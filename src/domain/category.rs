//! Categories: a slug that names one (and is its record's key), and the record the services return.

use std::fmt;

use super::Invalid;

/// Longest slug accepted.
pub const MAX_SLUG: usize = 64;

/// Lower-case ASCII letters and digits in runs joined by single hyphens (`t-shirts`), 1 to 64 long.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CategorySlug(String);

impl CategorySlug {
    pub fn parse(field: &str, text: &str) -> Result<Self, Invalid> {
        let ok = !text.is_empty()
            && text.len() <= MAX_SLUG
            && text.split('-').all(|run| {
                !run.is_empty()
                    && run
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            });
        if ok {
            Ok(Self(text.to_string()))
        } else {
            Err(Invalid::new(
                field,
                format!(
                    "must be 1 to {MAX_SLUG} lower-case letters and digits, in runs joined by single \
                     hyphens"
                ),
            ))
        }
    }

    /// A slug the store wrote (its record keys were checked when they were made).
    pub fn from_trusted(text: String) -> Self {
        Self(text)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CategorySlug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A category; `parent` is a top-level category (two levels at most).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Category {
    pub slug: String,
    pub name: String,
    pub parent: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_lower_case_runs_joined_by_hyphens() {
        for ok in ["shirts", "t-shirts", "size-10", "a", &"x".repeat(MAX_SLUG)] {
            assert!(CategorySlug::parse("slug", ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "Shirts",
            "t--shirts",
            "-shirts",
            "shirts-",
            "t shirts",
            "t_shirts",
            "ß",
            "shirts/../x",
            &"x".repeat(MAX_SLUG + 1),
        ] {
            assert_eq!(
                CategorySlug::parse("slug", bad).unwrap_err().field,
                "slug",
                "{bad}"
            );
        }
    }
}
