use icu_casemap::CaseMapper;
use icu_normalizer::ComposingNormalizerBorrowed;
use idna::uts46::{AsciiDenyList, DnsLength, Hyphens, Uts46};

use super::Invalid;

/// An email address in its one canonical spelling, so that every way of typing the same address is
/// the same account (issue 15, item 5): uniqueness and login both compare this form.
///
/// - The whole address is NFKC-normalised first: composed and decomposed accents (`é` as one code
///   point or as `e` + U+0301) become one, and full-width forms (`ａｎｎ＠ｅｘａｍｐｌｅ．ｃｏｍ`)
///   become their ASCII letters, `@` and `.`.
/// - The local part is case-folded with Unicode's full default case folding, then NFKC again: the
///   identifier comparison of RFC 7613/8265's username profiles. Full folding makes `ß` and `ss` one
///   (as `STRASSE` and `straße` are), and keeps the Turkish dotless `ı` distinct from `i`.
/// - The domain goes through IDNA (UTS #46, STD3 rules) and is stored as its ASCII form, A-labels
///   (`éxample.com` → `xn--xample-9ua.com`): that is the one spelling DNS and every mail server
///   accepts, it is lower-case ASCII by construction (the schema asserts lower case), and it does
///   not depend on which Unicode version decided a label's display form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

const MAX_LEN: usize = 254;
const MAX_LOCAL_LEN: usize = 64;

impl Email {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let invalid = || Invalid::new("email", "must be an email address like name@example.com");
        let email = normalize(raw).ok_or_else(invalid)?;
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
            || local.len() > MAX_LOCAL_LEN
            || !domain.contains('.')
            || !labels_ok
            || !charset_ok(local)
            || !charset_ok(domain)
            // The schema asserts the stored email equals its lower-casing: never let one through
            // that would fail there (as a 500) instead of here.
            || email != email.to_lowercase()
            // Normalising the normal form must change nothing, or one address would have two forms.
            || fold_local(local) != local
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

/// The canonical spelling of `raw`, or `None` when its domain is not a valid IDNA name.
fn normalize(raw: &str) -> Option<String> {
    let width_mapped = ComposingNormalizerBorrowed::new_nfkc().normalize(raw.trim());
    let (local, domain) = width_mapped.trim().rsplit_once('@')?;
    let domain = Uts46::new()
        .to_ascii(
            domain.as_bytes(),
            AsciiDenyList::STD3,
            Hyphens::CheckFirstLast,
            DnsLength::Verify,
        )
        .ok()?;
    Some(format!("{}@{domain}", fold_local(local)))
}

/// Case-folds a local part and normalises it again (folding can produce unnormalised text).
fn fold_local(local: &str) -> String {
    let folded = CaseMapper::new().fold_string(local);
    // Folding is not lower-casing: Cherokee, for one, folds to its capital letters. Lower-casing the
    // folded text keeps one form per address and satisfies the schema's lower-case assert.
    let lowered = folded.to_lowercase();
    ComposingNormalizerBorrowed::new_nfkc()
        .normalize(&lowered)
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::Email;

    fn parsed(raw: &str) -> String {
        Email::parse(raw)
            .unwrap_or_else(|e| panic!("{raw:?} refused: {e}"))
            .as_str()
            .to_string()
    }

    /// Each ASCII character of `s` as its full-width form (U+FF01..U+FF5E); others unchanged.
    fn full_width(s: &str) -> String {
        s.chars()
            .map(|c| match c {
                '!'..='~' => char::from_u32(c as u32 + 0xFEE0).unwrap(),
                _ => c,
            })
            .collect()
    }

    #[test]
    fn lowercases_and_trims() {
        assert_eq!(parsed("  Ann@Example.COM "), "ann@example.com");
        assert_eq!(parsed("ÉLODIE@exemple.fr"), "élodie@exemple.fr");
    }

    #[test]
    fn composed_and_decomposed_accents_are_one_address() {
        let composed = "\u{e9}lodie@exemple.fr";
        let decomposed = "e\u{301}lodie@exemple.fr";
        assert_ne!(composed, decomposed);
        assert_eq!(parsed(composed), parsed(decomposed));
        assert_eq!(parsed(decomposed), "\u{e9}lodie@exemple.fr");
        assert_eq!(parsed("E\u{301}LODIE@exemple.fr"), "\u{e9}lodie@exemple.fr");
    }

    #[test]
    fn full_width_letters_are_their_ascii_letters() {
        let wide = full_width("Ann.Lee@Example.com");
        assert_eq!(wide, "Ａｎｎ．Ｌｅｅ＠Ｅｘａｍｐｌｅ．ｃｏｍ");
        assert_eq!(parsed(&wide), "ann.lee@example.com");
        // An ideographic full stop separates labels as IDNA says it does.
        assert_eq!(parsed("ann@example\u{3002}com"), "ann@example.com");
    }

    #[test]
    fn sharp_s_folds_to_ss() {
        assert_eq!(parsed("straße@example.de"), "strasse@example.de");
        assert_eq!(parsed("STRASSE@example.de"), "strasse@example.de");
        assert_eq!(parsed("STRAẞE@example.de"), "strasse@example.de");
    }

    #[test]
    fn turkish_dotless_i_stays_distinct_from_i() {
        assert_eq!(parsed("KIZ@example.com"), "kiz@example.com");
        assert_eq!(parsed("kız@example.com"), "kız@example.com");
        assert_ne!(parsed("kız@example.com"), parsed("kiz@example.com"));
        // Capital dotted İ folds (untailored) to i + combining dot above, itself a third address.
        assert_eq!(parsed("İz@example.com"), "i\u{307}z@example.com");
    }

    #[test]
    fn scripts_that_fold_to_capitals_are_stored_lower_case() {
        // Cherokee folds to its capital letters; the stored form is still its own lower-casing.
        let upper = parsed("\u{13a0}\u{13a1}@example.com");
        let lower = parsed("\u{ab70}\u{ab71}@example.com");
        assert_eq!(upper, lower);
        assert_eq!(upper, upper.to_lowercase());
    }

    #[test]
    fn the_domain_is_stored_as_idna_ascii() {
        assert_eq!(parsed("ann@éxample.com"), "ann@xn--xample-9ua.com");
        assert_eq!(parsed("ann@ÉXAMPLE.com"), "ann@xn--xample-9ua.com");
        assert_eq!(parsed("ann@e\u{301}xample.com"), "ann@xn--xample-9ua.com");
        assert_eq!(parsed("ann@xn--xample-9ua.com"), "ann@xn--xample-9ua.com");
        assert_eq!(parsed(&full_width("ann@example.com")), "ann@example.com");
        assert_eq!(parsed("ann@ＭÜNCHEN.de"), "ann@xn--mnchen-3ya.de");
    }

    #[test]
    fn the_normal_form_is_a_fixed_point() {
        for raw in [
            "  Ann@Example.COM ",
            "e\u{301}lodie@ÉXAMPLE.com",
            "straße@example.de",
            "İz@example.com",
            "\u{ab70}@example.com",
            "ﬁx@example.com",
        ] {
            let once = parsed(raw);
            assert_eq!(parsed(&once), once, "{raw:?}");
        }
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
            "a@x-.com",
            "a@x_y.com",
            "a@x.com.",
            // A full-width @ is an @: this is a@b@c.com.
            "a＠b@c.com",
            // Full-width space is a space.
            "a\u{3000}b@x.com",
            "a@xn--zz.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
