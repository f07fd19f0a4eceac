//! Outbound webhook endpoints, kept by admins: the URL, the events it wants, whether it is enabled
//! and its signing secret; each endpoint's delivery log, and replaying a delivery. Deliveries are
//! written by the changes that cause them (`store::outbox::enqueue_webhook!`) and sent by the outbox.

use std::sync::Arc;

use crate::auth::Admin;
use crate::domain::bounded_text;
use crate::error::{Error, Result};
use crate::services::outbox::{Outbox, message_key, requeued};
use crate::store::Store;
use crate::store::webhooks::{DeliveryRow, EndpointChanges, EndpointRow, NewEndpoint};

/// The events an endpoint can ask for.
pub const EVENTS: [&str; 5] = [
    "order.placed",
    "order.paid",
    "order.status_changed",
    "order.cancelled",
    "product.stock_low",
];

const MAX_URL: usize = 2048;

/// An endpoint as an admin gives it, unchecked.
#[derive(Debug, Clone, Default)]
pub struct EndpointDraft {
    pub url: String,
    pub events: Vec<String>,
    pub enabled: Option<bool>,
    pub description: Option<String>,
}

/// Changes to an endpoint, unchecked; `description: Some(None)` removes it.
#[derive(Debug, Clone, Default)]
pub struct EndpointPatch {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    pub enabled: Option<bool>,
    pub description: Option<Option<String>>,
}

pub struct Webhooks {
    store: Store,
    outbox: Arc<Outbox>,
    /// Plain `http://` endpoints (development); production wants `https://`.
    allow_http: bool,
}

impl Webhooks {
    pub fn new(store: Store, outbox: Arc<Outbox>, allow_http: bool) -> Self {
        Self {
            store,
            outbox,
            allow_http,
        }
    }

    pub async fn create(&self, _admin: &Admin, draft: EndpointDraft) -> Result<EndpointRow> {
        let endpoint = NewEndpoint {
            url: self.parse_url(&draft.url)?,
            events: parse_events(&draft.events)?,
            enabled: draft.enabled.unwrap_or(true),
            secret: crate::webhooks::new_secret(),
            description: parse_description(draft.description.as_deref())?,
        };
        Ok(self.store.create_webhook_endpoint(endpoint).await?)
    }

    pub async fn list(&self, _admin: &Admin) -> Result<Vec<EndpointRow>> {
        Ok(self.store.webhook_endpoints().await?)
    }

    pub async fn get(&self, _admin: &Admin, id: &str) -> Result<EndpointRow> {
        let id = endpoint_key(id)?;
        self.store
            .webhook_endpoint(id)
            .await?
            .ok_or(Error::NotFound("webhook endpoint"))
    }

    pub async fn update(
        &self,
        _admin: &Admin,
        id: &str,
        patch: EndpointPatch,
    ) -> Result<EndpointRow> {
        let id = endpoint_key(id)?;
        let changes = EndpointChanges {
            url: patch
                .url
                .as_deref()
                .map(|u| self.parse_url(u))
                .transpose()?,
            events: patch.events.as_deref().map(parse_events).transpose()?,
            enabled: patch.enabled,
            description: patch
                .description
                .map(|d| parse_description(d.as_deref()))
                .transpose()?,
        };
        self.store
            .update_webhook_endpoint(id, changes)
            .await?
            .ok_or(Error::NotFound("webhook endpoint"))
    }

    pub async fn delete(&self, _admin: &Admin, id: &str) -> Result<()> {
        let id = endpoint_key(id)?;
        if self.store.delete_webhook_endpoint(id).await? {
            Ok(())
        } else {
            Err(Error::NotFound("webhook endpoint"))
        }
    }

    /// The endpoint's deliveries, newest first, each with its attempts.
    pub async fn deliveries(
        &self,
        admin: &Admin,
        id: &str,
        limit: u32,
    ) -> Result<Vec<DeliveryRow>> {
        let endpoint = self.get(admin, id).await?;
        Ok(self.store.webhook_deliveries(&endpoint.id, limit).await?)
    }

    /// Sends a finished delivery (delivered or given up on) again, with the same `webhook-id` and
    /// body, and a fresh round of attempts.
    pub async fn replay(&self, _admin: &Admin, id: &str, delivery_id: &str) -> Result<()> {
        let id = endpoint_key(id)?;
        let delivery = message_key(delivery_id).ok_or(Error::NotFound("message"))?;
        requeued(
            self.store
                .requeue_message(delivery, Some(id), &["sent", "dead"])
                .await?,
        )?;
        self.outbox.wake();
        Ok(())
    }

    /// An absolute `https://` URL (or `http://` outside production) with a host, as sent.
    fn parse_url(&self, raw: &str) -> Result<String> {
        let raw = raw.trim();
        if raw.len() > MAX_URL {
            return Err(Error::validation(
                "url",
                format!("must be at most {MAX_URL} characters"),
            ));
        }
        let url = reqwest::Url::parse(raw)
            .map_err(|e| Error::validation("url", format!("is not an absolute URL: {e}")))?;
        match url.scheme() {
            "https" => {}
            "http" if self.allow_http => {}
            "http" => {
                return Err(Error::validation("url", "must be https:// in production"));
            }
            _ => return Err(Error::validation("url", "must be an http(s):// URL")),
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(Error::validation("url", "must name a host"));
        }
        if url.fragment().is_some() {
            return Err(Error::validation("url", "must not have a #fragment"));
        }
        Ok(url.to_string())
    }
}

fn endpoint_key(id: &str) -> Result<&str> {
    message_key(id).ok_or(Error::NotFound("webhook endpoint"))
}

/// At least one event, each one of `EVENTS`; in `EVENTS`' order, each once.
fn parse_events(events: &[String]) -> Result<Vec<String>> {
    if events.is_empty() {
        return Err(Error::validation(
            "events",
            format!("must name at least one of {}", EVENTS.join(", ")),
        ));
    }
    for (i, event) in events.iter().enumerate() {
        if !EVENTS.contains(&event.as_str()) {
            return Err(Error::validation(
                format!("events[{i}]"),
                format!("{event:?} is no event; one of {}", EVENTS.join(", ")),
            ));
        }
    }
    Ok(EVENTS
        .iter()
        .filter(|e| events.iter().any(|wanted| wanted == *e))
        .map(|e| e.to_string())
        .collect())
}

fn parse_description(text: Option<&str>) -> Result<Option<String>> {
    Ok(text
        .map(|d| bounded_text("description", d, 0, 200))
        .transpose()?
        .filter(|d| !d.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::parse_events;

    #[test]
    fn events_are_known_ones_each_once_in_a_fixed_order() {
        let events =
            |list: &[&str]| parse_events(&list.iter().map(|e| e.to_string()).collect::<Vec<_>>());
        assert_eq!(
            events(&["order.paid", "order.placed", "order.paid"]).unwrap(),
            ["order.placed", "order.paid"]
        );
        assert!(events(&[]).is_err());
        let unknown = events(&["order.placed", "order.shipped"]).unwrap_err();
        assert!(unknown.to_string().starts_with("events[1]:"), "{unknown}");
    }
}
