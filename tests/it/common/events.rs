//! Server-Sent Events read from a response, event by event.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use super::client::{Api, Res, read};

/// One Server-Sent Event.
#[derive(Debug, Clone)]
pub struct SseEvent {
    pub event: String,
    pub id: String,
    pub data: Value,
}

/// A `text/event-stream` response read event by event.
pub struct EventReader {
    response: reqwest::Response,
    buffer: String,
}

impl EventReader {
    /// Opens `path` with the client's credentials; the status and, when 200, the stream.
    pub async fn open(
        api: &Api,
        path: &str,
        last_event_id: Option<&str>,
    ) -> Result<EventReader, Res> {
        let mut req = api
            .http
            .get(format!("{}{path}", api.base))
            .header("accept", "text/event-stream");
        if let Some(token) = &api.token {
            req = req.bearer_auth(token);
        }
        if let Some(id) = last_event_id {
            req = req.header("last-event-id", id);
        }
        for (name, value) in &api.headers {
            req = req.header(*name, value);
        }
        let response = req.send().await.expect("request sent");
        if response.status() != StatusCode::OK {
            return Err(read(response).await);
        }
        Ok(EventReader {
            response,
            buffer: String::new(),
        })
    }

    /// The next event within `timeout`: `Ok(None)` when the stream ended, `Err(())` on timeout.
    /// Comment lines (keep-alives) are skipped.
    pub async fn next(&mut self, timeout: Duration) -> Result<Option<SseEvent>, ()> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut event = SseEvent {
                    event: "message".into(),
                    id: String::new(),
                    data: Value::Null,
                };
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        event.event = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("id:") {
                        event.id = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if data.is_empty() {
                    continue;
                }
                event.data = serde_json::from_str(&data).unwrap_or(Value::String(data));
                return Ok(Some(event));
            }
            match tokio::time::timeout_at(deadline, self.response.chunk()).await {
                Err(_) => return Err(()),
                Ok(Ok(Some(bytes))) => self.buffer.push_str(&String::from_utf8_lossy(&bytes)),
                Ok(_) => return Ok(None),
            }
        }
    }
}
