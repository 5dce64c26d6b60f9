//! Inbox items: one stored webhook request, addressed to an agent.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use ulid::Ulid;

use super::ids::{AgentId, Source};
use super::DomainError;

/// The item's sort key within its agent: `{received_at as 13-digit epoch millis}_{ulid}`.
///
/// It is the brief's `{timestamp}_{guid}` RowKey; the fixed-width millis make byte order
/// equal time order, so "oldest first" is a plain key-range read on both backends.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RowKey(String);

impl RowKey {
    pub fn new(received_at: DateTime<Utc>, ulid: Ulid) -> Self {
        Self(format!("{:013}_{ulid}", received_at.timestamp_millis()))
    }

    pub fn parse(value: &str) -> Result<Self, DomainError> {
        let invalid = || DomainError::new("id", "malformed item id");
        let (millis, ulid) = value.split_once('_').ok_or_else(invalid)?;
        if millis.len() != 13 || !millis.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid());
        }
        Ulid::from_string(ulid).map_err(|_| invalid())?;
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An item's public id, `{agentId}:{rowKey}`: it names the item's key on both backends,
/// so `DELETE /api/webhook/items` needs nothing but ids.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ItemId {
    pub agent: AgentId,
    pub row_key: RowKey,
}

impl ItemId {
    pub fn new(agent: AgentId, received_at: DateTime<Utc>) -> Self {
        Self {
            agent,
            row_key: RowKey::new(received_at, Ulid::new()),
        }
    }
}

impl fmt::Display for ItemId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.agent, self.row_key.as_str())
    }
}

impl FromStr for ItemId {
    type Err = DomainError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let (agent, row_key) = value
            .split_once(':')
            .ok_or_else(|| DomainError::new("id", "malformed item id"))?;
        Ok(Self {
            agent: AgentId::parse(agent)?,
            row_key: RowKey::parse(row_key)?,
        })
    }
}

/// The id a provider gives one delivery (`X-GitHub-Delivery`, `webhook-id`…), used to
/// store a redelivered request only once.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DeliveryId(String);

impl DeliveryId {
    /// Stripe's `Idempotency-Key` limit, and far above any provider's delivery ids.
    pub const MAX_LEN: usize = 255;

    pub fn parse(header: &str, value: &str) -> Result<Self, DomainError> {
        let value = value.trim();
        if value.is_empty() || value.len() > Self::MAX_LEN {
            return Err(DomainError::new(
                "delivery id",
                format!("{header} must be 1 to {} characters", Self::MAX_LEN),
            ));
        }
        if !value.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(DomainError::new(
                "delivery id",
                format!("{header} must be printable ASCII without spaces"),
            ));
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One stored webhook request, exactly as it arrived.
#[derive(Debug, Clone, PartialEq)]
pub struct InboxItem {
    pub id: ItemId,
    pub source: Source,
    pub received_at: DateTime<Utc>,
    /// The request's `Content-Type`, if it sent one.
    pub content_type: Option<String>,
    /// Request headers for debugging, lowercased, with secrets redacted.
    pub headers: BTreeMap<String, String>,
    /// The body, byte for byte.
    pub payload: Bytes,
    pub delivery_id: Option<DeliveryId>,
    pub processed: bool,
}

impl InboxItem {
    /// Rough stored size, used to keep a page of items within response size limits.
    pub fn approx_size(&self) -> usize {
        let headers: usize = self
            .headers
            .iter()
            .map(|(k, v)| k.len() + v.len() + 8)
            .sum();
        self.payload.len() + headers + 256
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(name: &str) -> AgentId {
        AgentId::parse(name).unwrap()
    }

    #[test]
    fn an_item_id_round_trips_through_its_string_form() {
        let id = ItemId::new(agent("flickclaw"), Utc::now());
        let parsed: ItemId = id.to_string().parse().unwrap();
        assert_eq!(parsed, id);
    }

    #[test]
    fn row_keys_sort_in_time_order() {
        let earlier = DateTime::from_timestamp_millis(999).unwrap();
        let later = DateTime::from_timestamp_millis(1_000).unwrap();
        assert!(RowKey::new(earlier, Ulid::new()) < RowKey::new(later, Ulid::new()));
    }

    #[test]
    fn malformed_item_ids_are_refused() {
        for bad in [
            "",
            "flickclaw",
            "flickclaw:123_x",
            "Flick:1763871423123_01JDQ0000000000000000000000",
            "flickclaw:17638714231_01JDQ0000000000000000000000",
        ] {
            assert!(bad.parse::<ItemId>().is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn delivery_ids_are_bounded_printable_ascii() {
        assert!(DeliveryId::parse("X-GitHub-Delivery", "72d3162e-cc78-11e3").is_ok());
        assert!(DeliveryId::parse("Idempotency-Key", "").is_err());
        assert!(DeliveryId::parse("Idempotency-Key", "a b").is_err());
        assert!(DeliveryId::parse("Idempotency-Key", &"k".repeat(256)).is_err());
    }
}
