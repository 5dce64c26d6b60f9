//! What the outbound tests share: a short retry schedule, typed calls to the outbound API,
//! waiting for deliveries with a deadline, and checking signatures in Rust.

use std::future::Future;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::helpers::{Options, Reply, TestApp, DEADLINE};
use crate::receiver::Captured;

/// Options for outbound tests: loopback receivers allowed, and a schedule of
/// milliseconds: 3 attempts (2 retries) 100 ms then 200 ms apart, throttles wait 300 ms,
/// nothing waits over 1 s. Attempts time out after 5 s, far beyond a loopback answer on a
/// busy machine; the timeout test shortens it.
pub fn outbound_options() -> Options {
    Options::default()
        .outbound("NEXUS_ALLOW_PRIVATE_TARGETS", "true")
        .outbound("WEBHOOK_MAX_RETRIES", "2")
        .outbound("WEBHOOK_INITIAL_DELAY", "100ms")
        .outbound("WEBHOOK_MAX_DELAY", "1s")
        .outbound("WEBHOOK_THROTTLE_DELAY", "300ms")
        .outbound("WEBHOOK_TIMEOUT", "5s")
}

/// A created subscription: its id and the secret shown this once.
#[derive(Debug, Clone)]
pub struct Created {
    pub id: String,
    pub secret: String,
    pub body: Value,
}

async fn read(response: reqwest::Response) -> Reply {
    let status = response.status();
    let text = response.text().await.expect("reading the response");
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("response is not JSON ({status}): {text}"))
    };
    Reply { status, body }
}

impl TestApp {
    /// An authenticated request to the API, `body` sent as JSON unless `None`.
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.api_key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        read(request.send().await.expect("calling the API")).await
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.call(Method::POST, path, Some(body)).await
    }

    /// `POST /api/v1/subscriptions`; asserts 201.
    pub async fn create_subscription(&self, body: Value) -> Created {
        let reply = self.post("/api/v1/subscriptions", body).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        Created {
            id: reply.body["id"].as_str().expect("an id").to_owned(),
            secret: reply.body["secret"].as_str().expect("a secret").to_owned(),
            body: reply.body,
        }
    }

    /// A subscription of `url` to `events`, with no filters.
    pub async fn subscribe(&self, url: &str, events: &[&str]) -> Created {
        self.create_subscription(json!({"name": "test receiver", "url": url, "events": events}))
            .await
    }

    /// `POST /api/v1/events`; asserts 202 and returns the answer.
    pub async fn publish(&self, event: Value) -> Value {
        let reply = self.post("/api/v1/events", event).await;
        assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
        reply.body
    }

    /// Publishes an event of `event_type` with `data`; returns its one delivery id
    /// (asserting there is exactly one).
    pub async fn publish_one(&self, event_type: &str, data: Value) -> String {
        let published = self
            .publish(json!({"type": event_type, "source": "tests", "data": data}))
            .await;
        let deliveries = published["deliveries"].as_array().expect("deliveries");
        assert_eq!(deliveries.len(), 1, "{published}");
        deliveries[0]["id"].as_str().unwrap().to_owned()
    }

    /// `GET /api/v1/deliveries/{id}`.
    pub async fn delivery(&self, id: &str) -> Value {
        let reply = self.get(&format!("/api/v1/deliveries/{id}")).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        reply.body
    }

    /// Polls the delivery until `done` holds (at most [`DEADLINE`]); returns it.
    pub async fn wait_for_delivery(&self, id: &str, done: impl Fn(&Value) -> bool) -> Value {
        let done = &done;
        eventually(&format!("delivery {id}"), || async move {
            let delivery = self.delivery(id).await;
            done(&delivery).then_some(delivery)
        })
        .await
    }

    /// Waits until the delivery is `success` or `failed`.
    pub async fn wait_until_final(&self, id: &str) -> Value {
        self.wait_for_delivery(id, |d| d["status"] == "success" || d["status"] == "failed")
            .await
    }
}

/// Asserts a refused request: 400 with our JSON error, or 422 when the body is JSON of
/// the wrong shape (a missing field, a wrong type: axum's JSON rejection, as everywhere in
/// the API).
pub fn assert_refused(reply: &Reply, case: &str) {
    assert!(
        reply.status == StatusCode::BAD_REQUEST || reply.status == StatusCode::UNPROCESSABLE_ENTITY,
        "{case}: {} {}",
        reply.status,
        reply.body
    );
    let code = reply.body["error"]["code"].as_str().unwrap_or_default();
    assert!(
        code == "invalid_request" || code == "invalid_json",
        "{case}: {}",
        reply.body
    );
    assert!(reply.body["error"]["message"].is_string(), "{case}");
}

/// Polls `check` every 20 ms until it returns `Some`, panicking after [`DEADLINE`].
pub async fn eventually<T, F, Fut>(what: &str, check: F) -> T
where
    F: Fn() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The brief's signature: `sha256=` + hex HMAC-SHA256 of `{timestamp}.{body}`, keyed with
/// the whole secret string.
pub fn nexus_signature(secret: &str, timestamp: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// A Standard Webhooks signature: `v1,` + base64 HMAC-SHA256 of `{id}.{ts}.{body}`, keyed
/// with the base64-decoded secret after `whsec_`.
pub fn standard_signature(secret: &str, id: &str, timestamp: &str, body: &[u8]) -> String {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").expect("a whsec_ secret"))
        .expect("a base64 secret");
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// Asserts that `request` carries both signatures of its raw body: `X-Nexus-Signature-256`
/// by `nexus_secret`, and a `webhook-signature` entry for each of `standard_secrets`.
pub fn assert_signed(request: &Captured, nexus_secret: &str, standard_secrets: &[&str]) {
    let timestamp = request.header("x-nexus-timestamp");
    assert_eq!(
        request.header("x-nexus-signature-256"),
        nexus_signature(nexus_secret, timestamp, &request.body),
        "X-Nexus-Signature-256"
    );
    let id = request.header("webhook-id");
    let unix = request.header("webhook-timestamp");
    let listed: Vec<&str> = request.header("webhook-signature").split(' ').collect();
    for secret in standard_secrets {
        let expected = standard_signature(secret, id, unix, &request.body);
        assert!(
            listed.contains(&expected.as_str()),
            "webhook-signature {listed:?} lacks {expected}"
        );
    }
}
