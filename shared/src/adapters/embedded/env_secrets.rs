//! Secrets from environment variables: `WEBHOOK_SECRET_flickclaw_putio=…`.

use async_trait::async_trait;
use secrecy::SecretString;

use crate::ports::{SecretStore, SecretsError};

/// Reads each secret from the environment variable of the same name, at the time of the
/// request (so a test or supervisor can set variables before start-up only).
#[derive(Debug, Clone, Copy, Default)]
pub struct EnvSecrets;

#[async_trait]
impl SecretStore for EnvSecrets {
    async fn get(&self, name: &str) -> Result<Option<SecretString>, SecretsError> {
        Ok(std::env::var(name)
            .ok()
            .filter(|v| !v.is_empty())
            .map(SecretString::from))
    }
}
