//! Credentials: the shared webhook secret of an agent/source, and the consumer API key.

use http::HeaderMap;
use secrecy::ExposeSecret;

use super::{AppState, ServiceError, ServiceResult};
use crate::domain::ids::{AgentId, Source};
use crate::domain::secret::{secrets_match, webhook_secret_names, SECRET_HEADER};

/// Name of the consumer API key in the secret store (when `NEXUS_API_KEY` is not set).
pub const API_KEY_SECRET: &str = "NEXUS_API_KEY";

/// Checks `X-Webhook-Secret` against the most specific secret configured for the agent and
/// source. No secret configured means the endpoint is open, as the brief decides.
pub async fn check_webhook_secret(
    state: &AppState,
    agent: &AgentId,
    source: &Source,
    headers: &HeaderMap,
) -> ServiceResult<()> {
    for name in webhook_secret_names(agent, source) {
        let Some(expected) = state.secrets.get(&name).await? else {
            continue;
        };
        let presented = headers
            .get(SECRET_HEADER)
            .ok_or(ServiceError::Unauthorized(
                "missing X-Webhook-Secret header",
            ))?;
        if !secrets_match(expected.expose_secret().as_bytes(), presented.as_bytes()) {
            return Err(ServiceError::Unauthorized(
                "X-Webhook-Secret does not match the configured secret",
            ));
        }
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
