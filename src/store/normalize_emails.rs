//! The data step `0009_email_normalized` (issue 15, item 5): emails stored before `Email` normalized
//! them were only trimmed and lower-cased, so one address may be stored in several spellings. Each
//! account whose stored email differs from its normal form is rewritten to it when no other account
//! has that form. Where two or more accounts share one normal form, none is touched: which of them is
//! the person's real account is not a decision for a migration. Those, and emails that have no normal
//! form at all, are reported (a warning each, and a row in `email_review` for an admin).

use std::collections::BTreeMap;

use anyhow::Context as _;
use surrealdb::types::{RecordId, SurrealValue};

use super::users::on_email_taken;
use super::{Store, StoreError};
use crate::domain::Email;

/// The name the step is recorded under in the `migration` table.
pub const NAME: &str = "0009_email_normalized";

/// Accounts the step left as they were, for an admin to settle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailReview {
    pub kind: ReviewKind,
    /// The normal form the accounts' emails share; `None` for `Invalid`.
    pub normalized: Option<String>,
    /// The accounts: (user id, email as stored), by id.
    pub users: Vec<(String, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewKind {
    /// Two or more accounts are one address once normalized.
    Collision,
    /// The stored email has no normal form (today's `Email::parse` refuses it), so its owner cannot
    /// sign in with it.
    Invalid,
}

impl ReviewKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Collision => "collision",
            Self::Invalid => "invalid",
        }
    }
}

#[derive(SurrealValue)]
struct StoredEmail {
    id: String,
    email: String,
}

/// Keyed by kind and subject, so that instances running the step at the same time (or a rerun after
/// a crash before it was recorded) write each review once.
const REVIEW_TABLE: &str = "
    DEFINE TABLE IF NOT EXISTS email_review SCHEMAFULL;
    DEFINE FIELD IF NOT EXISTS kind ON email_review TYPE string ASSERT $value IN ['collision', 'invalid'];
    DEFINE FIELD IF NOT EXISTS normalized ON email_review TYPE option<string>;
    DEFINE FIELD IF NOT EXISTS users ON email_review TYPE array<record<user>>;
    DEFINE FIELD IF NOT EXISTS emails ON email_review TYPE array<string>;
    DEFINE FIELD IF NOT EXISTS found_at ON email_review TYPE datetime DEFAULT time::now() READONLY;
";

/// Runs the step; returns what it left for review. Safe to run more than once.
pub(super) async fn normalize_emails(store: &Store) -> anyhow::Result<Vec<EmailReview>> {
    let db = store.db();
    db.query(REVIEW_TABLE)
        .await
        .and_then(|r| r.check())
        .context("creating the email_review table")?;
    let users: Vec<StoredEmail> = db
        .query("SELECT record::id(id) AS id, email FROM user ORDER BY id")
        .await
        .and_then(|mut r| r.take(0))
        .context("reading the users' emails")?;

    let mut reviews = Vec::new();
    let mut by_form: BTreeMap<String, Vec<StoredEmail>> = BTreeMap::new();
    for user in users {
        match Email::parse(&user.email) {
            Ok(email) => by_form
                .entry(email.as_str().to_string())
                .or_default()
                .push(user),
            Err(_) => reviews.push(EmailReview {
                kind: ReviewKind::Invalid,
                normalized: None,
                users: vec![(user.id, user.email)],
            }),
        }
    }
    for (normalized, users) in by_form {
        let collision = match users.as_slice() {
            [one] if one.email == normalized => false,
            [one] => !rewrite(store, one, &normalized).await?,
            _ => true,
        };
        if collision {
            reviews.push(EmailReview {
                kind: ReviewKind::Collision,
                normalized: Some(normalized),
                users: users.into_iter().map(|u| (u.id, u.email)).collect(),
            });
        }
    }

    for review in &reviews {
        let ids: Vec<&str> = review.users.iter().map(|(id, _)| id.as_str()).collect();
        tracing::warn!(
            kind = review.kind.as_str(),
            normalized = review.normalized.as_deref(),
            user.ids = ?ids,
            "accounts left with their emails as stored: settle them by hand (table email_review)"
        );
        record(store, review).await?;
    }
    Ok(reviews)
}

/// Gives `user` its normal form; false when another account took that form meanwhile.
async fn rewrite(store: &Store, user: &StoredEmail, normalized: &str) -> anyhow::Result<bool> {
    let result = store
        .db()
        .query(
            "UPDATE type::record('user', $id) SET email = $normalized WHERE email = $stored
             RETURN NONE",
        )
        .bind(("id", user.id.clone()))
        .bind(("normalized", normalized.to_string()))
        .bind(("stored", user.email.clone()))
        .await
        .and_then(|r| r.check())
        .map_err(on_email_taken);
    match result {
        Ok(_) => Ok(true),
        Err(StoreError::EmailTaken) => Ok(false),
        Err(err) => Err(err).with_context(|| format!("normalizing the email of user {}", user.id)),
    }
}

async fn record(store: &Store, review: &EmailReview) -> anyhow::Result<()> {
    let subject = match &review.normalized {
        Some(normalized) => normalized.clone(),
        None => review.users.iter().map(|(id, _)| id.as_str()).collect(),
    };
    let users: Vec<RecordId> = review
        .users
        .iter()
        .map(|(id, _)| RecordId::new("user", id.as_str()))
        .collect();
    let emails: Vec<String> = review
        .users
        .iter()
        .map(|(_, email)| email.clone())
        .collect();
    store
        .db()
        .query(
            "UPSERT type::record('email_review', [$kind, $subject]) SET
                 kind = $kind, normalized = $normalized ?? NONE, users = $users, emails = $emails",
        )
        .bind(("kind", review.kind.as_str()))
        .bind(("subject", subject))
        .bind(("normalized", review.normalized.clone()))
        .bind(("emails", emails))
        .bind(("users", users))
        .await
        .and_then(|r| r.check())
        .context("recording an email review")?;
    Ok(())
}
