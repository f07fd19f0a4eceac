//! The HTTP client of the tests: bearer or browser (cookie jar, `Origin`), and responses read whole.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use reqwest::{Method, StatusCode};
use serde_json::Value;

#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub http: reqwest::Client,
    pub token: Option<String>,
    /// Cookies as a browser keeps them (name → value), when this client is a browser.
    pub(super) jar: Option<Arc<Mutex<HashMap<String, String>>>>,
    pub(super) origin: Option<String>,
    /// Headers sent on every request.
    pub(super) headers: Vec<(&'static str, String)>,
}

/// A response read whole: status, headers, raw text and (when JSON) the parsed body.
#[derive(Debug)]
pub struct Res {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
    pub json: Value,
}

impl Res {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts an RFC 9457 problem with this status and code; returns the body.
    pub fn assert_problem(&self, status: StatusCode, code: &str) -> &Value {
        assert_eq!(self.status, status, "body: {}", self.text);
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "body: {}",
            self.text
        );
        assert_eq!(self.json["code"], code, "body: {}", self.text);
        assert_eq!(self.json["status"], status.as_u16());
        assert!(self.json["type"].is_string() && self.json["title"].is_string());
        assert!(
            self.json["request_id"].is_string(),
            "problem without request id: {}",
            self.text
        );
        &self.json
    }
}

impl Api {
    pub fn new(base: &str) -> Api {
        Api {
            base: base.to_string(),
            http: reqwest::Client::new(),
            token: None,
            jar: None,
            origin: None,
            headers: Vec::new(),
        }
    }

    /// The same client, sending `name: value` on every request (e.g. `X-Cart-Token`).
    pub fn with_header(&self, name: &'static str, value: &str) -> Api {
        let mut api = self.clone();
        api.headers.push((name, value.to_string()));
        api
    }

    pub fn with_token(&self, token: &str) -> Api {
        Api {
            token: Some(token.to_string()),
            ..self.clone()
        }
    }

    pub async fn send(&self, method: Method, path: &str, body: Option<Value>) -> Res {
        self.try_send(method, path, body)
            .await
            .expect("request sent")
    }

    /// Like `send`, but a transport failure (server killed, connection refused) is an `Err`.
    pub async fn try_send(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Res, reqwest::Error> {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            req = req.bearer_auth(token);
        }
        if let Some(origin) = &self.origin {
            req = req.header("origin", origin);
        }
        for (name, value) in &self.headers {
            req = req.header(*name, value);
        }
        if let Some(jar) = &self.jar {
            let cookies = jar.lock().unwrap();
            if !cookies.is_empty() {
                let header: Vec<String> = cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
                req = req.header("cookie", header.join("; "));
            }
        }
        if let Some(body) = body {
            req = req
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let res = read(req.send().await?).await;
        if let Some(jar) = &self.jar {
            let mut cookies = jar.lock().unwrap();
            for set in res.headers.get_all("set-cookie") {
                let Some((name, rest)) = set.to_str().unwrap_or_default().split_once('=') else {
                    continue;
                };
                let value = rest.split(';').next().unwrap_or_default();
                let expired = rest.to_ascii_lowercase().contains("max-age=0");
                if value.is_empty() || expired {
                    cookies.remove(name);
                } else {
                    cookies.insert(name.to_string(), value.to_string());
                }
            }
        }
        Ok(res)
    }

    pub async fn get(&self, path: &str) -> Res {
        self.send(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Res {
        self.send(Method::POST, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Res {
        self.send(Method::PATCH, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> Res {
        self.send(Method::PUT, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Res {
        self.send(Method::DELETE, path, None).await
    }

    /// `POST` of a `multipart/form-data` body: `file` (named `filename`) and, when given, `alt`.
    pub async fn upload(&self, path: &str, filename: &str, file: &[u8], alt: Option<&str>) -> Res {
        let (content_type, body) = multipart(filename, file, alt);
        let mut req = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", content_type)
            .body(body);
        if let Some(token) = &self.token {
            req = req.bearer_auth(token);
        }
        read(req.send().await.expect("request sent")).await
    }
}

/// A `multipart/form-data` body of an upload form (content type, bytes): the client's multipart
/// feature would build another variant of the dependency tree, and the format is two parts.
pub fn multipart(filename: &str, file: &[u8], alt: Option<&str>) -> (String, Vec<u8>) {
    let boundary = format!("storefront-{}", uuid::Uuid::new_v4().simple());
    let mut body = Vec::new();
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(file);
    body.extend_from_slice(b"\r\n");
    if let Some(alt) = alt {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"alt\"\r\n\r\n{alt}\r\n"
            )
            .as_bytes(),
        );
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

pub async fn read(response: reqwest::Response) -> Res {
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap_or_default();
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Res {
        status,
        headers,
        text,
        json,
    }
}

/// Asserts that no response text carries a password hash.
pub fn assert_no_hash(res: &Res) {
    assert!(!res.text.contains("$argon2"), "hash leaked: {}", res.text);
    assert!(
        !res.text.contains("password_hash"),
        "hash field leaked: {}",
        res.text
    );
}
