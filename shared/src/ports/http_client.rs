//! Outbound HTTP: one signed POST to a subscriber.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

/// What came back from the subscriber.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    /// The raw `Retry-After` header, if any.
    pub retry_after: Option<String>,
    /// The start of the response body (at most what the caller asked for).
    pub body: Vec<u8>,
}

/// Why no response came back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The target resolves to an address outbound policy forbids (private, loopback…).
    #[error("refused: {0}")]
    Forbidden(String),
    #[error("connection failed: {0}")]
    Connect(String),
}

/// POSTs to subscribers. Redirects are never followed; every address connected to is
/// checked against the outbound address policy at connect time.
#[async_trait]
pub trait HttpClient: Send + Sync {
    async fn post(
        &self,
        url: &str,
        headers: &[(&'static str, String)],
        body: Bytes,
        timeout: Duration,
        max_body: usize,
    ) -> Result<HttpResponse, TransportError>;
}
