//! How outbound records are laid out as items of the outbound table (`outbound.rs` has the
//! table design): their keys, and each record mapped to and from attributes.
//!
//! Subscriptions are mapped attribute by attribute (their secrets are `SecretString`s,
//! without serde); events and deliveries are kept as their serde JSON in `doc`, next to
//! the few attributes the indexes and counters need.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue as Av;
use chrono::{DateTime, SecondsFormat, Utc};
use secrecy::{ExposeSecret, SecretString};

use crate::domain::outbound::{
    Delivery, DeliveryStatus, Event, EventPattern, Filters, OutboundDeliveryId, SigningSecret,
    Subscription, SubscriptionId, TargetUrl,
};
use crate::ports::outbound::RateLane;
use crate::ports::store::StoreResult;
use crate::ports::StoreError;

pub(super) type Attrs = HashMap<String, Av>;

/// The partition every subscription lives in: listing them is one Query.
pub(super) const SUBSCRIPTIONS: &str = "SUBS";
/// The value of `dlv_list` on every delivery: the partition of the newest-first index.
pub(super) const ALL_DELIVERIES: &str = "DLV";

/// Delivery attributes the indexes are keyed on (all sorted by `dlv_id`, a ULID).
pub(super) const DLV_ID: &str = "dlv_id";
pub(super) const DLV_LIST: &str = "dlv_list";
pub(super) const DLV_SUB: &str = "dlv_sub";
pub(super) const DLV_STATUS: &str = "dlv_status";
pub(super) const DLV_SUB_STATUS: &str = "dlv_sub_status";
/// A delivery's `updated_at`: the version a claim must find unchanged.
pub(super) const DLV_VERSION: &str = "dlv_version";
/// Until when (Unix milliseconds) a worker's claim on a delivery holds; no saved delivery
/// has one, since a save replaces the whole item.
pub(super) const DLV_CLAIMED_UNTIL: &str = "dlv_claimed_until";
/// The successful attempt's latency, while a delivery's status is `success`.
pub(super) const SUCCESS_LATENCY: &str = "success_latency_ms";

pub(super) fn key(pk: String, sk: &str) -> Attrs {
    HashMap::from([
        ("pk".to_owned(), Av::S(pk)),
        ("sk".to_owned(), Av::S(sk.to_owned())),
    ])
}

pub(super) fn subscription_key(id: &SubscriptionId) -> Attrs {
    key(SUBSCRIPTIONS.to_owned(), &format!("SUB#{id}"))
}

pub(super) fn event_key(id: &crate::domain::outbound::EventId) -> Attrs {
    key(format!("EVT#{id}"), "EVT")
}

pub(super) fn delivery_key(id: &OutboundDeliveryId) -> Attrs {
    key(format!("DLV#{id}"), "DLV")
}

pub(super) fn idempotency_key(key_text: &str) -> Attrs {
    key(format!("IDEMP#{key_text}"), "IDEMP")
}

/// The subscription's rate-limit lane: one item per lane under the same partition.
pub(super) fn rate_key(id: &SubscriptionId, lane: RateLane) -> Attrs {
    let sort = match lane {
        RateLane::Wake => "RATE",
        RateLane::Send => "SEND",
    };
    key(format!("RATE#{id}"), sort)
}

/// Times as RFC 3339 with as many fractional digits as they have: lossless.
pub(super) fn text_time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

pub(super) fn time(value: &str) -> StoreResult<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt(format!("bad timestamp {value:?}: {e}")))
}

pub(super) fn corrupt(what: &str, error: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {error}"))
}

pub(super) fn string<'a>(attrs: &'a Attrs, name: &str) -> StoreResult<&'a str> {
    attrs
        .get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
        .ok_or_else(|| StoreError::Corrupt(format!("attribute {name} missing or not a string")))
}

fn optional_string(attrs: &Attrs, name: &str) -> Option<String> {
    attrs.get(name).and_then(|v| v.as_s().ok()).cloned()
}

fn strings(attrs: &Attrs, name: &str) -> StoreResult<Vec<String>> {
    match attrs.get(name) {
        None => Ok(Vec::new()),
        Some(Av::L(list)) => list
            .iter()
            .map(|v| v.as_s().cloned().map_err(|_| corrupt(name, "not a string")))
            .collect(),
        Some(_) => Err(corrupt(name, "not a list")),
    }
}

fn string_list(values: impl IntoIterator<Item = String>) -> Av {
    Av::L(values.into_iter().map(Av::S).collect())
}

/// A subscription as an item. Its signing secrets are plain attributes: the table is
/// encrypted at rest and only the functions that sign or manage subscriptions read it.
pub(super) fn subscription_item(subscription: &Subscription) -> Attrs {
    let mut item = subscription_key(&subscription.id);
    let secrets = subscription
        .secrets
        .iter()
        .map(|secret| {
            let mut map = HashMap::from([(
                "value".to_owned(),
                Av::S(secret.value.expose_secret().to_owned()),
            )]);
            if let Some(expires_at) = secret.expires_at {
                map.insert("expires_at".to_owned(), Av::S(text_time(expires_at)));
            }
            Av::M(map)
        })
        .collect();
    let filters = &subscription.filters;
    item.extend([
        ("id".to_owned(), Av::S(subscription.id.to_string())),
        ("name".to_owned(), Av::S(subscription.name.clone())),
        (
            "url".to_owned(),
            Av::S(subscription.url.as_str().to_owned()),
        ),
        (
            "events".to_owned(),
            string_list(subscription.events.iter().map(|p| p.as_str().to_owned())),
        ),
        (
            "severities".to_owned(),
            string_list(filters.severities.clone()),
        ),
        ("active".to_owned(), Av::Bool(subscription.active)),
        ("secrets".to_owned(), Av::L(secrets)),
        (
            "created_at".to_owned(),
            Av::S(text_time(subscription.created_at)),
        ),
        (
            "updated_at".to_owned(),
            Av::S(text_time(subscription.updated_at)),
        ),
    ]);
    let optional = [
        ("project", filters.project.clone()),
        ("team", filters.team.clone()),
        ("description", subscription.description.clone()),
    ];
    for (name, value) in optional {
        if let Some(value) = value {
            item.insert(name.to_owned(), Av::S(value));
        }
    }
    if let Some(limit) = subscription.rate_limit {
        item.insert("rate_limit".to_owned(), Av::N(limit.to_string()));
    }
    item
}

/// A subscription from its item. Errors name attributes, never values: one holds secrets.
pub(super) fn subscription_from(attrs: &Attrs) -> StoreResult<Subscription> {
    let id = SubscriptionId::parse(string(attrs, "id")?).map_err(|e| corrupt("subscription", e))?;
    let bad = |e: &dyn std::fmt::Display| corrupt(id.as_str(), e);
    let events = strings(attrs, "events")?
        .iter()
        .map(|p| EventPattern::parse(p))
        .collect::<Result<_, _>>()
        .map_err(|e| bad(&e))?;
    let secrets = match attrs.get("secrets") {
        Some(Av::L(list)) => list
            .iter()
            .map(|v| {
                let map = v.as_m().map_err(|_| bad(&"a secret is not a map"))?;
                Ok(SigningSecret {
                    value: SecretString::from(string(map, "value")?.to_owned()),
                    expires_at: optional_string(map, "expires_at")
                        .map(|t| time(&t))
                        .transpose()?,
                })
            })
            .collect::<StoreResult<_>>()?,
        _ => return Err(bad(&"secrets missing or not a list")),
    };
    let rate_limit = match attrs.get("rate_limit") {
        Some(Av::N(n)) => Some(n.parse().map_err(|e| bad(&e))?),
        _ => None,
    };
    Ok(Subscription {
        // Checked when the subscription was created; what was allowed then still stands.
        url: TargetUrl::parse(string(attrs, "url")?, true).map_err(|e| bad(&e))?,
        name: string(attrs, "name")?.to_owned(),
        events,
        filters: Filters {
            project: optional_string(attrs, "project"),
            team: optional_string(attrs, "team"),
            severities: strings(attrs, "severities")?,
        },
        description: optional_string(attrs, "description"),
        rate_limit,
        active: matches!(attrs.get("active"), Some(Av::Bool(true))),
        secrets,
        created_at: time(string(attrs, "created_at")?)?,
        updated_at: time(string(attrs, "updated_at")?)?,
        id,
    })
}

pub(super) fn event_item(event: &Event) -> StoreResult<Attrs> {
    let mut item = event_key(&event.id);
    let doc = serde_json::to_string(event).map_err(|e| corrupt(event.id.as_str(), e))?;
    item.extend([
        ("doc".to_owned(), Av::S(doc)),
        ("event_type".to_owned(), Av::S(event.event_type.to_string())),
    ]);
    Ok(item)
}

/// A record kept as serde JSON in its `doc` attribute (events, deliveries).
pub(super) fn from_doc<T: serde::de::DeserializeOwned>(attrs: &Attrs) -> StoreResult<T> {
    let doc = string(attrs, "doc")?;
    serde_json::from_str(doc).map_err(|e| corrupt(string(attrs, "pk").unwrap_or("item"), e))
}

/// The latency of a successful delivery's last attempt, which the statistics average.
pub(super) fn success_latency(delivery: &Delivery) -> Option<u64> {
    match delivery.status {
        DeliveryStatus::Success => delivery.attempts.last().map(|a| a.latency_ms),
        _ => None,
    }
}

/// A delivery as an item: its document and the keys of the four delivery indexes.
pub(super) fn delivery_item(delivery: &Delivery) -> StoreResult<Attrs> {
    let mut item = delivery_key(&delivery.id);
    let doc = serde_json::to_string(delivery).map_err(|e| corrupt(delivery.id.as_str(), e))?;
    let (subscription, status) = (delivery.subscription_id.as_str(), delivery.status.as_str());
    item.extend([
        ("doc".to_owned(), Av::S(doc)),
        (DLV_ID.to_owned(), Av::S(delivery.id.to_string())),
        (DLV_LIST.to_owned(), Av::S(ALL_DELIVERIES.to_owned())),
        (DLV_SUB.to_owned(), Av::S(subscription.to_owned())),
        (DLV_STATUS.to_owned(), Av::S(status.to_owned())),
        (
            DLV_VERSION.to_owned(),
            Av::S(text_time(delivery.updated_at)),
        ),
        (
            DLV_SUB_STATUS.to_owned(),
            Av::S(format!("{subscription}#{status}")),
        ),
    ]);
    if let Some(latency) = success_latency(delivery) {
        item.insert(SUCCESS_LATENCY.to_owned(), Av::N(latency.to_string()));
    }
    Ok(item)
}
