//! Outbound webhook endpoints (schema 0016), their delivery log, and replaying a delivery. The
//! deliveries themselves are outbox messages of kind `webhook` (`outbox::enqueue_webhook!`).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use surrealdb::types::SurrealValue;

use super::{Store, StoreError};

/// An endpoint as stored.
#[derive(Debug, Clone, SurrealValue)]
pub struct EndpointRow {
    pub id: String,
    pub url: String,
    pub events: Vec<String>,
    pub enabled: bool,
    pub secret: String,
    pub description: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A new endpoint, already checked.
#[derive(Debug, Clone, SurrealValue)]
pub struct NewEndpoint {
    pub url: String,
    pub events: Vec<String>,
    pub enabled: bool,
    pub secret: String,
    pub description: Option<String>,
}

/// Changes to an endpoint, already checked; `None` leaves a field as it is (`description:
/// Some(None)` removes it).
#[derive(Debug, Clone, Default)]
pub struct EndpointChanges {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    pub enabled: Option<bool>,
    pub description: Option<Option<String>>,
}

/// One attempt at a delivery, as the log keeps it.
#[derive(Debug, Clone, SurrealValue)]
pub struct AttemptRow {
    pub attempt: i64,
    pub status_code: Option<i64>,
    pub error: Option<String>,
    pub duration_ms: i64,
    pub at: DateTime<Utc>,
}

/// A delivery (one event to one endpoint) and every attempt at it, oldest first.
#[derive(Debug, Clone, SurrealValue)]
pub struct DeliveryRow {
    pub id: String,
    pub event_type: String,
    pub status: String,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    pub log: Vec<AttemptRow>,
}

/// What an attempt to record in the log.
#[derive(Debug, Clone)]
pub struct AttemptRecord<'a> {
    pub message_id: &'a str,
    pub endpoint_id: &'a str,
    pub event_type: &'a str,
    pub attempt: i64,
    pub status_code: Option<u16>,
    pub error: Option<&'a str>,
    pub duration_ms: i64,
}

/// What asking to send a message again did.
#[derive(Debug, PartialEq, Eq)]
pub enum Requeue {
    Requeued,
    /// No such message (or, for a replay, not that endpoint's).
    Missing,
    /// The message is in a status it cannot be sent again from (e.g. still being tried).
    WrongStatus(String),
}

const ENDPOINT_COLUMNS: &str = "record::id(id) AS id, url, events, enabled, secret, description, \
     created_at, updated_at";

impl Store {
    pub async fn create_webhook_endpoint(
        &self,
        endpoint: NewEndpoint,
    ) -> Result<EndpointRow, StoreError> {
        let mut response = self
            .db()
            .query(format!(
                "{{
                    LET $e = (CREATE ONLY webhook_endpoint CONTENT $endpoint RETURN VALUE id);
                    RETURN (SELECT {ENDPOINT_COLUMNS} FROM ONLY $e);
                 }}"
            ))
            .bind(("endpoint", endpoint))
            .await?;
        response.take::<Option<EndpointRow>>(0)?.ok_or_else(|| {
            StoreError::UnknownOutcome("creating an endpoint returned nothing".into())
        })
    }

    /// Every endpoint, oldest first.
    pub async fn webhook_endpoints(&self) -> Result<Vec<EndpointRow>, StoreError> {
        let mut response = self
            .db()
            .query(format!(
                "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoint ORDER BY created_at, id"
            ))
            .await?;
        Ok(response.take(0)?)
    }

    pub async fn webhook_endpoint(&self, id: &str) -> Result<Option<EndpointRow>, StoreError> {
        let mut response = self
            .db()
            .query(format!(
                "SELECT {ENDPOINT_COLUMNS} FROM ONLY type::record('webhook_endpoint', $id)"
            ))
            .bind(("id", id.to_string()))
            .await?;
        Ok(response.take(0)?)
    }

    /// Applies `changes`; `None` when there is no such endpoint.
    pub async fn update_webhook_endpoint(
        &self,
        id: &str,
        changes: EndpointChanges,
    ) -> Result<Option<EndpointRow>, StoreError> {
        let mut response = self
            .db()
            .query(format!(
                "{{
                    LET $e = type::record('webhook_endpoint', $id);
                    IF (SELECT VALUE id FROM ONLY $e) = NONE {{ RETURN NONE }};
                    UPDATE $e SET
                        url = $url ?? url,
                        events = $events ?? events,
                        enabled = $enabled ?? enabled,
                        description = IF $set_description {{ $description }} ELSE {{ description }};
                    RETURN (SELECT {ENDPOINT_COLUMNS} FROM ONLY $e);
                 }}"
            ))
            .bind(("id", id.to_string()))
            .bind(("url", changes.url))
            .bind(("events", changes.events))
            .bind(("enabled", changes.enabled))
            .bind(("set_description", changes.description.is_some()))
            .bind(("description", changes.description.flatten()))
            .await?;
        Ok(response.take(0)?)
    }

    /// Deletes an endpoint with its log and the deliveries not yet made (one being made when it
    /// goes finishes, and is the last). Whether there was one.
    pub async fn delete_webhook_endpoint(&self, id: &str) -> Result<bool, StoreError> {
        let mut response = self
            .db()
            .query(
                "{
                    LET $e = type::record('webhook_endpoint', $id);
                    IF (SELECT VALUE id FROM ONLY $e) = NONE { RETURN false };
                    DELETE outbox WHERE endpoint = $e AND status != 'sending';
                    DELETE webhook_attempt WHERE endpoint = $e;
                    DELETE $e;
                    RETURN true;
                 }",
            )
            .bind(("id", id.to_string()))
            .await?;
        Ok(response.take::<Option<bool>>(0)?.unwrap_or(false))
    }

    /// Adds an attempt to the delivery log.
    pub async fn record_webhook_attempt(&self, a: AttemptRecord<'_>) -> Result<(), StoreError> {
        self.db()
            .query(
                "CREATE webhook_attempt CONTENT {
                    endpoint: type::record('webhook_endpoint', $endpoint),
                    message: type::record('outbox', $message),
                    event_type: $event_type, attempt: $attempt, status_code: $status_code,
                    error: $error, duration_ms: $duration_ms
                 }",
            )
            .bind(("endpoint", a.endpoint_id.to_string()))
            .bind(("message", a.message_id.to_string()))
            .bind(("event_type", a.event_type.to_string()))
            .bind(("attempt", a.attempt))
            .bind(("status_code", a.status_code.map(i64::from)))
            .bind((
                "error",
                a.error.map(|e| e.chars().take(500).collect::<String>()),
            ))
            .bind(("duration_ms", a.duration_ms))
            .await?
            .check()?;
        Ok(())
    }

    /// An endpoint's deliveries, newest first, each with its attempts.
    pub async fn webhook_deliveries(
        &self,
        endpoint_id: &str,
        limit: u32,
    ) -> Result<Vec<DeliveryRow>, StoreError> {
        /// The deliveries (their `log` left empty) and every attempt at them, oldest first.
        #[derive(SurrealValue)]
        struct Read {
            rows: Vec<DeliveryRow>,
            attempts: Vec<LoggedAttempt>,
        }
        #[derive(SurrealValue)]
        struct LoggedAttempt {
            message: String,
            entry: AttemptRow,
        }
        // The attempts are read in one query on `webhook_attempt_message` through `$ids`, a
        // parameter: a subquery correlated with its delivery (`WHERE message = $parent.id`) is
        // planned as a scan of every attempt ever logged for each delivery (as products' variants
        // were, `products::return_products!`).
        let mut response = self
            .db()
            .query(
                "LET $rows = (SELECT record::id(id) AS id, purpose AS event_type, status,
                        next_attempt_at, last_error, created_at, sent_at, [] AS log
                    FROM outbox WHERE endpoint = type::record('webhook_endpoint', $endpoint)
                    ORDER BY created_at DESC LIMIT $limit);
                 LET $ids = $rows.map(|$r| type::record('outbox', $r.id));
                 RETURN { rows: $rows, attempts: (SELECT record::id(message) AS message,
                        { attempt: attempt, status_code: status_code, error: error,
                          duration_ms: duration_ms, at: at } AS entry
                    FROM webhook_attempt WHERE message IN $ids ORDER BY at) };",
            )
            .bind(("endpoint", endpoint_id.to_string()))
            .bind(("limit", i64::from(limit)))
            .await?;
        let Some(read) = response.take::<Option<Read>>(2)? else {
            return Ok(Vec::new());
        };
        let mut log: HashMap<String, Vec<AttemptRow>> = HashMap::new();
        for a in read.attempts {
            log.entry(a.message).or_default().push(a.entry);
        }
        Ok(read
            .rows
            .into_iter()
            .map(|mut row| {
                row.log = log.remove(&row.id).unwrap_or_default();
                row
            })
            .collect())
    }

    /// Makes a message due again, with a fresh round of attempts, if it is in one of the statuses
    /// `from` (and, with `endpoint_id`, a delivery to that endpoint).
    pub async fn requeue_message(
        &self,
        id: &str,
        endpoint_id: Option<&str>,
        from: &[&str],
    ) -> Result<Requeue, StoreError> {
        #[derive(SurrealValue)]
        struct Outcome {
            outcome: String,
            status: Option<String>,
        }
        let outcome: Option<Outcome> = self
            .retry_on_conflict(|| async {
                let mut response = self
                    .db()
                    .query(
                        "{
                            LET $m = type::record('outbox', $id);
                            LET $current = (SELECT status, endpoint FROM ONLY $m);
                            IF $current = NONE OR ($endpoint != NONE
                                AND $current.endpoint != type::record('webhook_endpoint', $endpoint)) {
                                RETURN { outcome: 'missing' }
                            };
                            IF $current.status NOT IN $from {
                                RETURN { outcome: 'wrong_status', status: $current.status }
                            };
                            UPDATE $m SET status = 'pending', attempts = 0,
                                next_attempt_at = time::now(), last_error = NONE, sent_at = NONE;
                            RETURN { outcome: 'requeued' };
                         }",
                    )
                    .bind(("id", id.to_string()))
                    .bind(("endpoint", endpoint_id.map(str::to_string)))
                    .bind((
                        "from",
                        from.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                    ))
                    .await?;
                Ok(response.take::<Option<Outcome>>(0)?)
            })
            .await?;
        let outcome =
            outcome.ok_or_else(|| StoreError::UnknownOutcome("requeue returned nothing".into()))?;
        Ok(match (outcome.outcome.as_str(), outcome.status) {
            ("requeued", _) => Requeue::Requeued,
            ("missing", _) => Requeue::Missing,
            ("wrong_status", Some(status)) => Requeue::WrongStatus(status),
            (other, _) => return Err(StoreError::UnknownOutcome(other.to_string())),
        })
    }
}
