//! Subscription management: create, list, get, update, delete, toggle, rotate the secret.

use std::sync::Arc;

use secrecy::SecretString;
use serde::Deserialize;

use super::new_signing_secret;
use crate::domain::outbound::{
    validate_name, EventPattern, EventType, Filters, SigningSecret, Subscription, SubscriptionId,
    TargetUrl,
};
use crate::domain::DomainError;
use crate::services::{AppState, ServiceError, ServiceResult};

/// Most event patterns one subscription may list.
const MAX_PATTERNS: usize = 100;

/// The brief's create request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSubscription {
    pub name: String,
    pub url: String,
    #[serde(default)]
    pub events: Vec<String>,
    pub project_filter: Option<String>,
    pub team_filter: Option<String>,
    #[serde(default)]
    pub severity_filter: Vec<String>,
    pub description: Option<String>,
    pub rate_limit: Option<u32>,
}

/// A partial update: absent fields stay as they are; `null` clears optional ones.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionPatch {
    pub name: Option<String>,
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    #[serde(default, with = "double_option")]
    pub project_filter: Option<Option<String>>,
    #[serde(default, with = "double_option")]
    pub team_filter: Option<Option<String>>,
    pub severity_filter: Option<Vec<String>>,
    #[serde(default, with = "double_option")]
    pub description: Option<Option<String>>,
    #[serde(default, with = "double_option")]
    pub rate_limit: Option<Option<u32>>,
    pub active: Option<bool>,
}

/// Tells a field set to `null` (`Some(None)`) from an absent one (`None`).
mod double_option {
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, T, D>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
    where
        T: Deserialize<'de>,
        D: Deserializer<'de>,
    {
        Option::<T>::deserialize(deserializer).map(Some)
    }
}

fn patterns(events: &[String]) -> Result<Vec<EventPattern>, DomainError> {
    if events.is_empty() {
        return Err(DomainError::new(
            "events",
            "list at least one event type or pattern",
        ));
    }
    if events.len() > MAX_PATTERNS {
        return Err(DomainError::new(
            "events",
            format!("at most {MAX_PATTERNS} event types"),
        ));
    }
    events.iter().map(|e| EventPattern::parse(e)).collect()
}

fn rate_limit(value: Option<u32>) -> Result<Option<u32>, DomainError> {
    match value {
        Some(0) | Some(100_001..) => Err(DomainError::new(
            "rate_limit",
            "must be between 1 and 100000 requests per minute",
        )),
        other => Ok(other),
    }
}

fn url(state: &AppState, value: &str) -> Result<TargetUrl, DomainError> {
    super::target_url(&state.config.outbound, value)
}

/// Creates a subscription; the new secret is returned this once.
pub async fn create(
    state: &AppState,
    input: NewSubscription,
) -> ServiceResult<(Subscription, SecretString)> {
    let now = state.clock.now();
    let secret = new_signing_secret();
    let subscription = Subscription {
        id: SubscriptionId::new(),
        name: validate_name(&input.name)?,
        url: url(state, &input.url)?,
        events: patterns(&input.events)?,
        filters: Filters {
            project: input.project_filter,
            team: input.team_filter,
            severities: input.severity_filter,
        },
        description: input.description,
        rate_limit: rate_limit(input.rate_limit)?,
        active: true,
        secrets: vec![SigningSecret {
            value: secret.clone(),
            expires_at: None,
        }],
        created_at: now,
        updated_at: now,
    };
    state.outbound.put_subscription(&subscription).await?;
    Ok((subscription, secret))
}

/// Subscriptions, oldest first, optionally only active ones or those an event type reaches.
pub async fn list(
    state: &AppState,
    active_only: bool,
    event_type: Option<EventType>,
) -> ServiceResult<Vec<Subscription>> {
    let all = state.outbound.list_subscriptions().await?;
    Ok(all
        .iter()
        .filter(|s| !active_only || s.active)
        .filter(|s| {
            event_type
                .as_ref()
                .is_none_or(|t| s.has_event_type_matching(t))
        })
        .cloned()
        .collect())
}

pub async fn get(state: &AppState, id: &SubscriptionId) -> ServiceResult<Subscription> {
    state
        .outbound
        .get_subscription(id)
        .await?
        .map(Arc::unwrap_or_clone)
        .ok_or(ServiceError::NotFound("subscription"))
}

pub async fn update(
    state: &AppState,
    id: &SubscriptionId,
    patch: SubscriptionPatch,
) -> ServiceResult<Subscription> {
    let mut subscription = get(state, id).await?;
    if let Some(name) = patch.name {
        subscription.name = validate_name(&name)?;
    }
    if let Some(value) = patch.url {
        subscription.url = url(state, &value)?;
    }
    if let Some(events) = patch.events {
        subscription.events = patterns(&events)?;
    }
    if let Some(project) = patch.project_filter {
        subscription.filters.project = project;
    }
    if let Some(team) = patch.team_filter {
        subscription.filters.team = team;
    }
    if let Some(severities) = patch.severity_filter {
        subscription.filters.severities = severities;
    }
    if let Some(description) = patch.description {
        subscription.description = description;
    }
    if let Some(limit) = patch.rate_limit {
        subscription.rate_limit = rate_limit(limit)?;
    }
    if let Some(active) = patch.active {
        subscription.active = active;
    }
    subscription.updated_at = state.clock.now();
    state.outbound.put_subscription(&subscription).await?;
    Ok(subscription)
}

pub async fn delete(state: &AppState, id: &SubscriptionId) -> ServiceResult<()> {
    if state.outbound.delete_subscription(id).await? {
        Ok(())
    } else {
        Err(ServiceError::NotFound("subscription"))
    }
}

/// Flips `active`.
pub async fn toggle(state: &AppState, id: &SubscriptionId) -> ServiceResult<Subscription> {
    let mut subscription = get(state, id).await?;
    subscription.active = !subscription.active;
    subscription.updated_at = state.clock.now();
    state.outbound.put_subscription(&subscription).await?;
    Ok(subscription)
}

/// Issues a new secret; the old one keeps signing for the configured grace period.
pub async fn rotate_secret(
    state: &AppState,
    id: &SubscriptionId,
) -> ServiceResult<(Subscription, SecretString)> {
    let mut subscription = get(state, id).await?;
    let now = state.clock.now();
    let secret = new_signing_secret();
    subscription.rotate(secret.clone(), now, state.config.outbound.secret_grace);
    subscription.updated_at = now;
    state.outbound.put_subscription(&subscription).await?;
    Ok((subscription, secret))
}
