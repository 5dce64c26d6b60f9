//! Credentials: the verifier of an agent/source, and the consumer API key.

use secrecy::ExposeSecret;

use super::{AppState, ServiceError, ServiceResult};
use crate::domain::ids::{AgentId, Source};
use crate::domain::secret::{secrets_match, webhook_secret_names};
use crate::domain::verify::{verify, VerifierConfig, VerifyRequest};

/// Name of the consumer API key in the secret store (when `NEXUS_API_KEY` is not set).
pub const API_KEY_SECRET: &str = "NEXUS_API_KEY";

/// Verifies a webhook request with the most specific verifier configured for its agent
/// and source (`WEBHOOK_SECRET_{agent}_{source}`, then `WEBHOOK_SECRET_{agent}`). A plain
/// stored value is a shared secret expected in `X-Webhook-Secret`; a JSON value names a
/// provider scheme and its secrets (README, "Verifying providers"). No verifier configured
/// means the endpoint is open, as the brief decides.
pub async fn verify_webhook(
    state: &AppState,
    agent: &AgentId,
    source: &Source,
    request: &VerifyRequest<'_>,
) -> ServiceResult<()> {
    for name in webhook_secret_names(agent, source) {
        let Some(stored) = state.secrets.get(&name).await? else {
            continue;
        };
        let config = VerifierConfig::parse(stored.expose_secret())
            .map_err(|error| ServiceError::Verifier { name, error })?;
        verify(&config, request)?;
        return Ok(());
    }
    Ok(())
}

/// Checks a presented bearer token against the consumer API key.
pub async fn check_api_key(state: &AppState, presented: Option<&str>) -> ServiceResult<()> {
    let expected = match &state.config.api_key {
        Some(key) => key.clone(),
        None => state
            .secrets
            .get(API_KEY_SECRET)
            .await?
            .ok_or(ServiceError::NotConfigured(
                "no consumer API key is configured",
            ))?,
    };
    let presented = presented.ok_or(ServiceError::Unauthorized(
        "missing API key: send Authorization: Bearer <key>",
    ))?;
    if !secrets_match(expected.expose_secret().as_bytes(), presented.as_bytes()) {
        return Err(ServiceError::Unauthorized("invalid API key"));
    }
    Ok(())
}
