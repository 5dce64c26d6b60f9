//! Typed HTTP helpers per endpoint of a running test app.

use reqwest::header::CONTENT_TYPE;
use reqwest::{Response, StatusCode};
use serde_json::Value;

use super::TestApp;

/// A response read whole: status and JSON body.
pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
}

impl Reply {
    async fn read(response: Response) -> Self {
        let status = response.status();
        let text = response.text().await.expect("reading the response");
        let body = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("response is not JSON ({status}): {text}"));
        Self { status, body }
    }

    /// Asserts the error shape and code, returning the message.
    pub fn error(&self, status: StatusCode, code: &str) -> String {
        assert_eq!(self.status, status, "body: {}", self.body);
        assert_eq!(self.body["error"]["code"], code, "body: {}", self.body);
        self.body["error"]["message"]
            .as_str()
            .expect("an error message")
            .to_owned()
    }
}

/// One webhook request, built up fluently.
pub struct Webhook<'a> {
    app: &'a TestApp,
    path: String,
    content_type: Option<String>,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl<'a> Webhook<'a> {
    pub fn json(mut self, body: &str) -> Self {
        self.content_type = Some("application/json".into());
        self.body = body.as_bytes().to_vec();
        self
    }

    pub fn body(mut self, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        self.content_type = Some(content_type.into());
        self.body = body.into();
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub async fn send(self) -> Reply {
        let mut request = self
            .app
            .client
            .post(format!("{}{}", self.app.base, self.path))
            .body(self.body);
        if let Some(content_type) = self.content_type {
            request = request.header(CONTENT_TYPE, content_type);
        }
        for (name, value) in self.headers {
            request = request.header(name, value);
        }
        Reply::read(request.send().await.expect("sending a webhook")).await
    }
}

impl TestApp {
    /// `POST /api/webhook/{agent}?source={source}` (no `source` when `None`).
    pub fn webhook(&self, agent: &str, source: Option<&str>) -> Webhook<'_> {
        let path = match source {
            Some(source) => format!("/api/webhook/{agent}?source={source}"),
            None => format!("/api/webhook/{agent}"),
        };
        Webhook {
            app: self,
            path,
            content_type: None,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// `GET /api/webhook/pending` with the given query string, authenticated.
    pub async fn pending(&self, query: &str) -> Reply {
        self.pending_as(Some(&self.api_key), query).await
    }

    pub async fn pending_as(&self, key: Option<&str>, query: &str) -> Reply {
        let mut request = self
            .client
            .get(format!("{}/api/webhook/pending?{query}", self.base));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        Reply::read(request.send().await.expect("listing pending")).await
    }

    /// The raw text of an authenticated pending list, to check payloads byte for byte.
    pub async fn pending_text(&self, query: &str) -> String {
        self.client
            .get(format!("{}/api/webhook/pending?{query}", self.base))
            .bearer_auth(&self.api_key)
            .send()
            .await
            .expect("listing pending")
            .text()
            .await
            .expect("reading pending")
    }

    /// All pending items of `agent`, following cursors.
    pub async fn pending_items(&self, agent: &str) -> Vec<Value> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut query = format!("agent={agent}&limit=100");
            if let Some(cursor) = &cursor {
                query.push_str(&format!("&cursor={cursor}"));
            }
            let reply = self.pending(&query).await;
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
            if let Some(group) = reply.body["agents"][agent].as_array() {
                items.extend(group.iter().cloned());
            }
            match reply.body["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => return items,
            }
        }
    }

    /// `DELETE /api/webhook/items` with `{"ids": ids}`.
    pub async fn delete_items(&self, ids: &[&str]) -> Reply {
        let response = self
            .client
            .delete(format!("{}/api/webhook/items", self.base))
            .bearer_auth(&self.api_key)
            .json(&serde_json::json!({ "ids": ids }))
            .send()
            .await
            .expect("deleting items");
        Reply::read(response).await
    }
}
