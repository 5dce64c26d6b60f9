//! How outbound records are laid out in SQLite: the schema, and the rows and documents a
//! record becomes.

use chrono::{DateTime, SecondsFormat, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::db::text_time;
use crate::domain::outbound::{
    Delivery, DeliveryStatus, Event, EventPattern, Filters, SigningSecret, Subscription,
    SubscriptionId, TargetUrl,
};
use crate::ports::store::StoreResult;
use crate::ports::StoreError;

pub(super) const MIGRATIONS: [&str; 4] = [
    OUTBOUND,
    super::queue_sql::SCHEMA,
    SEND_SLOTS,
    TRIED_BY_SUBSCRIPTION,
];

/// A delivery waiting for its first attempt stays out of the by-subscription index: that
/// index spreads each subscription's rows over pages of their own, so every commit rewrote
/// about one page per subscription it touched, once when a publish added its deliveries and
/// again when their first outcome moved them. Waiting deliveries are the queue's backlog,
/// and a subscription's are found by the status index, which carries the subscription.
const TRIED_BY_SUBSCRIPTION: &str = r#"
DROP INDEX deliveries_by_subscription_status;
CREATE INDEX deliveries_tried_by_subscription ON deliveries (subscription_id, status, id)
    WHERE status != 'pending';
DROP INDEX deliveries_by_status;
CREATE INDEX deliveries_by_status ON deliveries (status, id, subscription_id);
"#;

/// The send lane of the rate limit (`RateLane::Send`); `rate_slots` is the wake lane.
const SEND_SLOTS: &str = r#"
CREATE TABLE send_slots (
    subscription_id TEXT NOT NULL PRIMARY KEY,
    tat             TEXT NOT NULL
) WITHOUT ROWID;
"#;

const OUTBOUND: &str = r#"
CREATE TABLE subscriptions (
    id         TEXT NOT NULL PRIMARY KEY,
    created_at TEXT NOT NULL,
    doc        TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE events (
    id         TEXT NOT NULL PRIMARY KEY,
    type       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    doc        TEXT NOT NULL
);
-- A rowid table: documents grow with their attempt log. Every list reads an index whose
-- last column is the id, so a page is a range of one index, newest first.
CREATE TABLE deliveries (
    id                 TEXT NOT NULL,
    subscription_id    TEXT NOT NULL,
    event_id           TEXT NOT NULL,
    status             TEXT NOT NULL,
    -- The successful attempt's latency while the status is `success`, for the stats.
    success_latency_ms INTEGER,
    doc                TEXT NOT NULL
);
CREATE UNIQUE INDEX deliveries_by_id ON deliveries (id);
CREATE INDEX deliveries_by_status ON deliveries (status, id);
CREATE INDEX deliveries_by_subscription_status ON deliveries (subscription_id, status, id);
CREATE TABLE idempotency_keys (
    key          TEXT NOT NULL PRIMARY KEY,
    event_id     TEXT NOT NULL,
    delivery_ids TEXT NOT NULL,
    created_at   TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX idempotency_keys_by_time ON idempotency_keys (created_at);
-- GCRA theoretical arrival times of rate-limited subscriptions.
CREATE TABLE rate_slots (
    subscription_id TEXT NOT NULL PRIMARY KEY,
    tat             TEXT NOT NULL
) WITHOUT ROWID;
-- The stats' counters, kept by the jobs that write events and deliveries, in the same
-- transaction (outbound_sql.rs): reading them never counts rows. Not triggers: a statement
-- that fires one needs a statement journal, a copy of every page it touches.
CREATE TABLE event_counts (
    type  TEXT    NOT NULL PRIMARY KEY,
    count INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE delivery_counts (
    status     TEXT    NOT NULL PRIMARY KEY,
    count      INTEGER NOT NULL,
    latency_ms INTEGER NOT NULL
) WITHOUT ROWID;
"#;

pub(super) fn corrupt(what: &str, error: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {error}"))
}

/// A rate slot's time, to the nanosecond: slots `60 s / n` apart must not drift.
pub(super) fn nanos_time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

/// A delivery as its row stores it.
pub(super) struct DeliveryRow {
    pub id: String,
    pub subscription_id: String,
    pub event_id: String,
    pub status: &'static str,
    pub success_latency_ms: Option<i64>,
    pub doc: String,
}

impl DeliveryRow {
    pub fn new(delivery: &Delivery) -> StoreResult<Self> {
        let success_latency_ms = match delivery.status {
            DeliveryStatus::Success => delivery
                .attempts
                .last()
                .map(|attempt| i64::try_from(attempt.latency_ms).unwrap_or(i64::MAX)),
            _ => None,
        };
        Ok(Self {
            id: delivery.id.as_str().to_owned(),
            subscription_id: delivery.subscription_id.as_str().to_owned(),
            event_id: delivery.event_id.as_str().to_owned(),
            status: delivery.status.as_str(),
            success_latency_ms,
            doc: serde_json::to_string(delivery).map_err(|e| corrupt(delivery.id.as_str(), e))?,
        })
    }
}

/// An event as its row stores it.
pub(super) struct EventRow {
    pub id: String,
    pub event_type: String,
    pub created_at: String,
    pub doc: String,
}

impl EventRow {
    pub fn new(event: &Event) -> StoreResult<Self> {
        Ok(Self {
            id: event.id.as_str().to_owned(),
            event_type: event.event_type.as_str().to_owned(),
            created_at: text_time(event.timestamp),
            doc: serde_json::to_string(event).map_err(|e| corrupt(event.id.as_str(), e))?,
        })
    }
}

/// A subscription's stored document, signing secrets included in the clear (the database
/// file is the secret store of `nexus serve`). No `Debug`: it must never be logged.
#[derive(Serialize, Deserialize)]
struct StoredSubscription {
    id: SubscriptionId,
    name: String,
    url: String,
    events: Vec<EventPattern>,
    filters: Filters,
    description: Option<String>,
    rate_limit: Option<u32>,
    active: bool,
    secrets: Vec<StoredSecret>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

#[derive(Serialize, Deserialize)]
struct StoredSecret {
    value: String,
    expires_at: Option<DateTime<Utc>>,
}

/// The document a subscription is stored as.
pub(super) fn subscription_doc(subscription: &Subscription) -> StoreResult<String> {
    let Subscription {
        id,
        name,
        url,
        events,
        filters,
        description,
        rate_limit,
        active,
        secrets,
        created_at,
        updated_at,
    } = subscription.clone();
    let stored = StoredSubscription {
        id,
        name,
        url: url.as_str().to_owned(),
        events,
        filters,
        description,
        rate_limit,
        active,
        secrets: secrets
            .into_iter()
            .map(|secret| StoredSecret {
                value: secret.value.expose_secret().to_owned(),
                expires_at: secret.expires_at,
            })
            .collect(),
        created_at,
        updated_at,
    };
    // Only the id goes into the error: the document holds secrets.
    serde_json::to_string(&stored).map_err(|e| corrupt(subscription.id.as_str(), e))
}

/// A subscription from its stored document.
pub(super) fn subscription_from_doc(doc: &str) -> StoreResult<Subscription> {
    // serde_json errors can quote the offending value, which may be a secret: keep only
    // where it went wrong.
    let stored: StoredSubscription = serde_json::from_str(doc).map_err(|e| {
        StoreError::Corrupt(format!(
            "unreadable subscription document at line {} column {}",
            e.line(),
            e.column()
        ))
    })?;
    let id = stored.id.as_str().to_owned();
    Ok(Subscription {
        // Checked when the subscription was created; what was allowed then still stands.
        url: TargetUrl::parse(&stored.url, true).map_err(|e| corrupt(&id, e))?,
        id: stored.id,
        name: stored.name,
        events: stored.events,
        filters: stored.filters,
        description: stored.description,
        rate_limit: stored.rate_limit,
        active: stored.active,
        secrets: stored
            .secrets
            .into_iter()
            .map(|secret| SigningSecret {
                value: SecretString::from(secret.value),
                expires_at: secret.expires_at,
            })
            .collect(),
        created_at: stored.created_at,
        updated_at: stored.updated_at,
    })
}
