use crate::error::Error;

/// An email address, trimmed and lower-cased so uniqueness is case-insensitive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

const MAX_LEN: usize = 254;

impl Email {
    pub fn parse(raw: &str) -> Result<Self, Error> {
        let email = raw.trim().to_lowercase();
        let invalid =
            || Error::validation("email", "must be an email address like name@example.com");
        if email.is_empty() || email.len() > MAX_LEN {
            return Err(invalid());
        }
        let (local, domain) = email.rsplit_once('@').ok_or_else(invalid)?;
        let labels_ok = domain
            .split('.')
            .all(|l| !l.is_empty() && !l.starts_with('-') && !l.ends_with('-'));
        let charset_ok = |s: &str| {
            s.chars()
                .all(|c| !c.is_whitespace() && !c.is_control() && !"<>()[],;:\\\"@".contains(c))
        };
        if local.is_empty()
            || local.len() > 64
            || !domain.contains('.')
            || !labels_ok
            || !charset_ok(local)
            || !charset_ok(domain)
            // The database's `string::is_email` assert uses this parser: agree with it exactly.
            || addr::parse_email_address(&email).is_err()
        {
            return Err(invalid());
        }
        Ok(Self(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::Email;

    #[test]
    fn lowercases_and_trims() {
        assert_eq!(
            Email::parse("  Ann@Example.COM ").unwrap().as_str(),
            "ann@example.com"
        );
        assert_eq!(
            Email::parse("ÉLODIE@exemple.fr").unwrap().as_str(),
            "élodie@exemple.fr"
        );
    }

    #[test]
    fn rejects_what_is_not_an_address() {
        for bad in [
            "",
            "ann",
            "ann@",
            "@x.com",
            "ann@localhost",
            "a b@x.com",
            "a@b@c.com",
            "a@x..com",
            "a@-x.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad} accepted");
        }
    }
}
