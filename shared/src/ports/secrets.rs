//! Where configured secrets are read from.

use async_trait::async_trait;
use secrecy::SecretString;

/// A failure to *read* secrets (as opposed to a secret that is not configured). Requests
/// that need a secret fail closed on it.
#[derive(Debug, thiserror::Error)]
#[error("secret store unavailable: {message}")]
pub struct SecretsError {
    pub message: String,
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

/// Read access to named secrets (`WEBHOOK_SECRET_flickclaw_putio`, `NEXUS_API_KEY`).
///
/// Contract: `Ok(None)` means the secret is not configured, which for webhook secrets means
/// the endpoint is open; any doubt (throttling, access denied) is an `Err`, never `None`.
#[async_trait]
pub trait SecretStore: Send + Sync {
    async fn get(&self, name: &str) -> Result<Option<SecretString>, SecretsError>;
}
