//! Webhook subscriptions: which events go to which URL, and with which secrets they are
//! signed.

mod filters;
mod secret;

use std::time::Duration;

use chrono::{DateTime, Utc};
use secrecy::SecretString;

pub use filters::Filters;
pub use secret::{
    generate_secret, SigningSecret, MIN_SECRET_RANDOM_BYTES, SECRET_PREFIX, SECRET_RANDOM_BYTES,
};

use super::after;
use super::event::{Event, EventPattern, EventType};
use super::ids::SubscriptionId;
use super::target::TargetUrl;
use crate::domain::DomainError;

/// How long a replaced secret keeps signing after a rotation, so receivers can switch.
pub const DEFAULT_ROTATION_GRACE: Duration = Duration::from_secs(24 * 60 * 60);

/// Longest accepted subscription name, in characters.
pub const MAX_NAME_CHARS: usize = 200;

/// Longest accepted description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 1000;

/// Accepted `rate_limit` values, in requests per minute.
pub const RATE_LIMIT_RANGE: std::ops::RangeInclusive<u32> = 1..=100_000;

/// One subscriber endpoint and what it wants to hear about.
#[derive(Debug, Clone)]
pub struct Subscription {
    pub id: SubscriptionId,
    pub name: String,
    pub url: TargetUrl,
    /// An event is sent when any pattern matches its type; none means no events.
    pub events: Vec<EventPattern>,
    pub filters: Filters,
    pub description: Option<String>,
    /// Most requests per minute to this subscriber; `None` uses the configured default.
    pub rate_limit: Option<u32>,
    /// Inactive subscriptions get no new deliveries.
    pub active: bool,
    /// Newest first: the current secret, then replaced ones still in their grace period.
    pub secrets: Vec<SigningSecret>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Subscription {
    /// Whether `event` is delivered to this subscription: it is active, one of its
    /// patterns selects the event's type and the event passes its filters.
    pub fn matches(&self, event: &Event) -> bool {
        self.active
            && self.has_event_type_matching(&event.event_type)
            && self.filters.matches(event)
    }

    /// Whether any of the subscription's patterns selects `event_type`, active or not
    /// (`GET /api/v1/subscriptions?event_type=`).
    pub fn has_event_type_matching(&self, event_type: &EventType) -> bool {
        self.events
            .iter()
            .any(|pattern| pattern.matches(event_type))
    }

    /// The secrets that sign a delivery at `now`, newest first: the current one, then
    /// replaced ones whose grace period has not ended, most recently replaced first.
    pub fn signing_secrets(&self, now: DateTime<Utc>) -> Vec<&SecretString> {
        let mut active: Vec<&SigningSecret> =
            self.secrets.iter().filter(|s| s.is_active(now)).collect();
        // `None` (current) sorts after every `Some`, so reversing puts it first.
        active.sort_by_key(|s| std::cmp::Reverse(s.expires_at.unwrap_or(DateTime::<Utc>::MAX_UTC)));
        active.into_iter().map(|s| &s.value).collect()
    }

    /// Makes `new_secret` the current secret. The one it replaces keeps signing for
    /// `grace`; replaced secrets whose grace has already ended are dropped.
    pub fn rotate(&mut self, new_secret: SecretString, now: DateTime<Utc>, grace: Duration) {
        let expires_at = after(now, grace);
        for secret in &mut self.secrets {
            if secret.expires_at.is_none() {
                secret.expires_at = Some(expires_at);
            }
        }
        self.secrets.retain(|s| s.is_active(now));
        self.secrets.insert(0, SigningSecret::current(new_secret));
        self.updated_at = now;
    }
}

/// A subscription name: trimmed, 1..=200 characters, no control characters.
pub fn validate_name(value: &str) -> Result<String, DomainError> {
    let name = value.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(DomainError::new(
            "name",
            format!("must be 1 to {MAX_NAME_CHARS} characters"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(DomainError::new(
            "name",
            "must not contain control characters",
        ));
    }
    Ok(name.to_owned())
}

/// A description: trimmed, at most 1000 characters; blank means none.
pub fn validate_description(value: &str) -> Result<Option<String>, DomainError> {
    let description = value.trim();
    if description.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(DomainError::new(
            "description",
            format!("must be at most {MAX_DESCRIPTION_CHARS} characters"),
        ));
    }
    Ok((!description.is_empty()).then(|| description.to_owned()))
}

/// A `rate_limit` in requests per minute: 1..=100000.
pub fn validate_rate_limit(value: u32) -> Result<u32, DomainError> {
    if !RATE_LIMIT_RANGE.contains(&value) {
        return Err(DomainError::new(
            "rate_limit",
            format!(
                "must be {} to {} requests per minute",
                RATE_LIMIT_RANGE.start(),
                RATE_LIMIT_RANGE.end()
            ),
        ));
    }
    Ok(value)
}

#[cfg(test)]
mod tests;
