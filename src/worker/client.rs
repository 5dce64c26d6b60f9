//! The gateway's consumer API, as the worker uses it: list pending items, mark them
//! processed.

use std::collections::BTreeMap;
use std::time::Duration;

use nexus_shared::telemetry::error_chain;
use reqwest::{StatusCode, Url};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::config::WorkerConfig;

/// Longest wait for a TCP (and TLS) connection, so a black-holed gateway fails fast.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A client of one gateway, holding its API key.
pub struct Gateway {
    http: reqwest::Client,
    base: Url,
    key: SecretString,
}

/// One page of `GET /api/webhook/pending`. Items stay raw JSON text, so they can be written
/// out exactly as the gateway sent them.
#[derive(Debug, Deserialize)]
pub struct PendingPage {
    pub agents: BTreeMap<String, Vec<Box<RawValue>>>,
    pub next_cursor: Option<String>,
}

/// The answer of `DELETE /api/webhook/items`.
#[derive(Debug, Deserialize)]
pub struct MarkResult {
    pub processed: Vec<String>,
    pub already_processed: Vec<String>,
    pub unknown: Vec<String>,
}

/// Why a call to the gateway failed.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// No answer: connection refused, DNS, TLS, timeout.
    #[error("cannot reach the gateway at {url}: {cause}")]
    Unreachable { url: Url, cause: String },
    /// An answer that says "later": 5xx, 429, or a body that is not the API's.
    #[error("the gateway at {url} is unavailable ({status}): {message}")]
    Unavailable {
        url: Url,
        status: StatusCode,
        message: String,
    },
    /// 401: the API key is wrong; retrying cannot help.
    #[error("the gateway at {url} refused the API key (401 Unauthorized)")]
    Unauthorized { url: Url },
    /// Any other 4xx: the worker's configuration (URL, page size) does not fit the gateway.
    #[error("the gateway at {url} refused the request ({status}): {message}")]
    Refused {
        url: Url,
        status: StatusCode,
        message: String,
    },
}

impl GatewayError {
    /// Whether waiting and trying again may help.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unreachable { .. } | Self::Unavailable { .. })
    }
}

impl Gateway {
    /// Builds the HTTP client once, with the configured timeouts.
    pub fn new(config: &WorkerConfig) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("nexus-worker/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(CONNECT_TIMEOUT.min(config.request_timeout))
            .timeout(config.request_timeout)
            .build()?;
        Ok(Self {
            http,
            base: config.gateway.clone(),
            key: config.api_key.clone(),
        })
    }

    /// `GET /api/webhook/pending?limit=…[&cursor=…]`, every agent's items.
    pub async fn pending(
        &self,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<PendingPage, GatewayError> {
        let url = self.url("api/webhook/pending");
        let mut query = vec![("limit", limit.to_string())];
        query.extend(cursor.map(|c| ("cursor", c.to_owned())));
        let request = self.http.get(url.clone()).query(&query);
        self.send(url, request).await
    }

    /// `DELETE /api/webhook/items` with `{"ids": ids}` (at most 1000 ids).
    pub async fn mark_processed(&self, ids: &[String]) -> Result<MarkResult, GatewayError> {
        let url = self.url("api/webhook/items");
        let request = self
            .http
            .delete(url.clone())
            .json(&serde_json::json!({ "ids": ids }));
        self.send(url, request).await
    }

    fn url(&self, path: &str) -> Url {
        self.base
            .join(path)
            .expect("a relative path joins onto an http(s) base")
    }

    async fn send<T: serde::de::DeserializeOwned>(
        &self,
        url: Url,
        request: reqwest::RequestBuilder,
    ) -> Result<T, GatewayError> {
        let unreachable = |e: reqwest::Error| GatewayError::Unreachable {
            url: url.clone(),
            cause: error_chain(&e.without_url()),
        };
        let response = request
            .bearer_auth(self.key.expose_secret())
            .send()
            .await
            .map_err(unreachable)?;
        let status = response.status();
        let body = response.bytes().await.map_err(unreachable)?;
        if status.is_success() {
            return serde_json::from_slice(&body).map_err(|e| GatewayError::Unavailable {
                url,
                status,
                message: format!("the answer is not the consumer API's JSON: {e}"),
            });
        }
        let message = error_message(&body);
        Err(match status {
            StatusCode::UNAUTHORIZED => GatewayError::Unauthorized { url },
            s if s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS => {
                GatewayError::Unavailable {
                    url,
                    status,
                    message,
                }
            }
            _ => GatewayError::Refused {
                url,
                status,
                message,
            },
        })
    }
}

/// The message of the API's `{"error": {"message"}}`, or the start of whatever came back
/// (a proxy's HTML page, say).
fn error_message(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct Envelope {
        error: Inner,
    }
    #[derive(Deserialize)]
    struct Inner {
        message: String,
    }
    match serde_json::from_slice::<Envelope>(body) {
        Ok(envelope) => envelope.error.message,
        Err(_) => String::from_utf8_lossy(body).chars().take(200).collect(),
    }
}
