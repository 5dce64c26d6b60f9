//! One event's delivery to one subscription: its status, when it is next tried, and the
//! log of every attempt.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::time;

use super::after;
use super::backoff::Decision;
use super::event::{Event, EventType};
use super::ids::{EventId, OutboundDeliveryId, SubscriptionId};
use crate::domain::DomainError;

/// How much of a subscriber's response body an attempt keeps, in bytes.
pub const MAX_RESPONSE_BODY_BYTES: usize = 1024;

/// Where a delivery stands: the brief's five states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    /// Created, not yet tried.
    Pending,
    /// An attempt is in flight.
    Sending,
    /// The subscriber answered 2xx.
    Success,
    /// Given up on: out of retries, the endpoint is gone, or a manual retry failed.
    Failed,
    /// Failed at least once; another attempt is scheduled.
    Retrying,
}

impl DeliveryStatus {
    pub const ALL: [Self; 5] = [
        Self::Pending,
        Self::Sending,
        Self::Success,
        Self::Failed,
        Self::Retrying,
    ];

    /// The name used in JSON, query strings and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Sending => "sending",
            Self::Success => "success",
            Self::Failed => "failed",
            Self::Retrying => "retrying",
        }
    }

    /// Whether no further attempt will be made unless someone asks for one.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Success | Self::Failed)
    }
}

impl fmt::Display for DeliveryStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DeliveryStatus {
    type Err = DomainError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == value)
            .ok_or_else(|| {
                DomainError::new(
                    "status",
                    "must be one of pending, sending, success, failed, retrying",
                )
            })
    }
}

/// One try at sending a delivery, as logged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    /// 1 for the first attempt.
    pub number: u32,
    /// When the request started.
    #[serde(serialize_with = "time::serialize")]
    pub at: DateTime<Utc>,
    /// The response status; `None` when no response came.
    pub status_code: Option<u16>,
    /// From sending the request to the end of the response or the failure.
    pub latency_ms: u64,
    /// The start of the response body ([`truncate_body`]).
    pub response_body: Option<String>,
    /// Whether `response_body` was cut short.
    pub response_truncated: bool,
    /// What went wrong without a response (timeout, connection refused…).
    pub error: Option<String>,
}

/// At most `max` bytes of `bytes` as text, invalid UTF-8 replaced, cut on a character
/// boundary; `true` when something was left out.
pub fn truncate_body(bytes: &[u8], max: usize) -> (String, bool) {
    // A character is at most 4 bytes, so decoding this much decides the cut without
    // decoding a huge body.
    let prefix = &bytes[..bytes.len().min(max.saturating_add(4))];
    let mut text = String::from_utf8_lossy(prefix).into_owned();
    if text.len() <= max && prefix.len() == bytes.len() {
        return (text, false);
    }
    let mut cut = max.min(text.len());
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    text.truncate(cut);
    (text, true)
}

/// The delivery of one event to one subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    pub id: OutboundDeliveryId,
    pub event_id: EventId,
    pub subscription_id: SubscriptionId,
    pub event_type: EventType,
    pub status: DeliveryStatus,
    /// Every attempt so far, oldest first.
    pub attempts: Vec<Attempt>,
    /// When the next attempt is due; `None` once the delivery is final.
    #[serde(serialize_with = "time::serialize_option")]
    pub next_attempt_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "time::serialize")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "time::serialize")]
    pub updated_at: DateTime<Utc>,
    /// Asked for by a user (`POST /api/v1/deliveries/{id}/retry`): one attempt, which does
    /// not schedule another when it fails.
    pub manual: bool,
    /// `next_attempt_at` is a future send slot this delivery took under its subscription's
    /// rate limit: at that time it is sent without asking the limiter again, so a delivery
    /// held back by the limit is received about twice, not once per freed slot.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub holds_rate_slot: bool,
}

impl Delivery {
    /// A new delivery of `event` to `subscription_id`, due at once.
    pub fn new(event: &Event, subscription_id: SubscriptionId, now: DateTime<Utc>) -> Self {
        Self {
            id: OutboundDeliveryId::new(),
            event_id: event.id.clone(),
            subscription_id,
            event_type: event.event_type.clone(),
            status: DeliveryStatus::Pending,
            attempts: Vec::new(),
            next_attempt_at: Some(now),
            created_at: now,
            updated_at: now,
            manual: false,
            holds_rate_slot: false,
        }
    }

    /// The number the next attempt gets.
    pub fn next_attempt_number(&self) -> u32 {
        u32::try_from(self.attempts.len())
            .unwrap_or(u32::MAX)
            .saturating_add(1)
    }

    /// Holds the delivery for the rate-limit slot it took at `now`, `wait` from now: its
    /// next attempt is due then.
    pub fn hold_for_rate_slot(&mut self, wait: Duration, now: DateTime<Utc>) {
        self.holds_rate_slot = true;
        self.next_attempt_at = Some(after(now, wait));
        self.updated_at = now;
    }

    /// Whether the delivery looks stored but never queued at `now`: waiting for its first
    /// attempt or for a manual retry (pending) and due more than `threshold` ago, where
    /// `threshold` is longer than a queued message takes to be picked up. A
    /// delivery held for a rate-limit slot is due at the slot, so it is not stranded while
    /// its message sleeps; a retrying one keeps its message between attempts.
    pub fn is_stranded(&self, now: DateTime<Utc>, threshold: Duration) -> bool {
        self.status == DeliveryStatus::Pending
            && (self.attempts.is_empty() || self.manual)
            && self
                .next_attempt_at
                .is_some_and(|due| after(due, threshold) < now)
    }

    /// The rate-limit slot the delivery already holds, if it is due by `by`.
    pub fn rate_slot_due_by(&self, by: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.next_attempt_at
            .filter(|slot| self.holds_rate_slot && *slot <= by)
    }

    /// Queues the delivery for one more attempt, asked for by a user at `now`: due at once,
    /// and a failure is final (see [`record`](Self::record)).
    pub fn retry_manually(&mut self, now: DateTime<Utc>) {
        self.manual = true;
        self.status = DeliveryStatus::Pending;
        self.next_attempt_at = Some(now);
        self.holds_rate_slot = false;
        self.updated_at = now;
    }

    /// Logs `attempt` and applies `decision`, made for it with [`decide`](super::decide).
    /// A manual delivery never schedules itself again: a failure is final.
    pub fn record(&mut self, attempt: Attempt, decision: &Decision, now: DateTime<Utc>) {
        self.attempts.push(attempt);
        self.updated_at = now;
        // The slot is spent; a retry takes a new one.
        self.holds_rate_slot = false;
        let (status, next) = match *decision {
            Decision::Delivered => (DeliveryStatus::Success, None),
            Decision::Disable | Decision::GiveUp => (DeliveryStatus::Failed, None),
            Decision::RetryIn(_) if self.manual => (DeliveryStatus::Failed, None),
            Decision::RetryIn(delay) => (DeliveryStatus::Retrying, Some(after(now, delay))),
        };
        self.status = status;
        self.next_attempt_at = next;
    }
}

#[cfg(test)]
mod tests;
