//! Outbound storage: subscriptions, published events and their deliveries.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::store::StoreResult;
use crate::domain::outbound::{
    Delivery, DeliveryStatus, Event, EventId, OutboundDeliveryId, Subscription, SubscriptionId,
};

/// What happened to a publish.
#[derive(Debug, Clone, PartialEq)]
pub enum PublishOutcome {
    /// The event and its deliveries are stored durably.
    Stored,
    /// The idempotency key was used before: nothing new was stored; this is what the first
    /// publish stored.
    Duplicate {
        event_id: EventId,
        delivery_ids: Vec<OutboundDeliveryId>,
    },
}

/// One event to publish, with its deliveries and idempotency key.
#[derive(Debug, Clone)]
pub struct Publication {
    pub event: Event,
    pub deliveries: Vec<Delivery>,
    pub idempotency_key: Option<String>,
}

/// Which deliveries to list, newest first.
#[derive(Debug, Clone, Default)]
pub struct DeliveryQuery {
    pub subscription_id: Option<SubscriptionId>,
    pub status: Option<DeliveryStatus>,
    /// Start after this delivery (exclusive).
    pub after: Option<OutboundDeliveryId>,
    pub limit: usize,
}

/// A page of deliveries and whether more follow.
#[derive(Debug, Clone)]
pub struct DeliveryPage {
    pub deliveries: Vec<Delivery>,
    pub more: bool,
}

/// Counters behind `GET /api/v1/stats`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeliveryCounts {
    pub events: u64,
    pub succeeded: u64,
    pub failed: u64,
    /// Deliveries waiting for a retry (status `retrying`) or their first attempt.
    pub pending: u64,
    /// Sum of the latency of successful attempts, for the average.
    pub success_latency_ms_total: u64,
    pub events_by_type: std::collections::BTreeMap<String, u64>,
}

/// Durable outbound state.
///
/// Contracts every backend keeps (the behaviour suite checks them on each):
/// - `publish` returns only once the event and every delivery are durable, and stores an
///   idempotency key with them so a repeat stores nothing;
/// - deliveries are listed newest first, by id (ULIDs sort by time).
#[async_trait]
pub trait OutboundStore: Send + Sync {
    async fn put_subscription(&self, subscription: &Subscription) -> StoreResult<()>;
    /// A subscription, shared: every delivery to it reads it.
    async fn get_subscription(&self, id: &SubscriptionId)
        -> StoreResult<Option<Arc<Subscription>>>;
    /// Every subscription, oldest first. Fan-out reads it on each publish, so a backend that
    /// keeps them in memory hands out a shared list rather than a copy.
    async fn list_subscriptions(&self) -> StoreResult<Arc<[Subscription]>>;
    /// Deletes a subscription; false when there was none.
    async fn delete_subscription(&self, id: &SubscriptionId) -> StoreResult<bool>;

    async fn publish(
        &self,
        event: &Event,
        deliveries: &[Delivery],
        idempotency_key: Option<&str>,
        now: DateTime<Utc>,
    ) -> StoreResult<PublishOutcome>;
    /// Publishes several events as [`publish`](Self::publish) does each, in order; a backend
    /// that can commits them together (SQLite in one commit, DynamoDB in as few
    /// transactions as fit). An error may leave the first ones published.
    async fn publish_all(
        &self,
        items: &[Publication],
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<PublishOutcome>> {
        let mut outcomes = Vec::with_capacity(items.len());
        for item in items {
            let key = item.idempotency_key.as_deref();
            outcomes.push(
                self.publish(&item.event, &item.deliveries, key, now)
                    .await?,
            );
        }
        Ok(outcomes)
    }
    /// A stored event, shared: every delivery of a fan-out reads the same one.
    async fn get_event(&self, id: &EventId) -> StoreResult<Option<Arc<Event>>>;

    async fn get_delivery(&self, id: &OutboundDeliveryId) -> StoreResult<Option<Delivery>>;
    /// Replaces a delivery (after an attempt, or a manual retry). Releases its claim.
    async fn save_delivery(&self, delivery: &Delivery) -> StoreResult<()>;
    /// Claims `delivery` for one attempt until `until`; true if this caller now holds it.
    /// Refused while another claim is live at `now`, and when the delivery is no longer
    /// stored as `delivery` shows it (an attempt or a change was saved since it was read).
    /// Queues deliver at least once (SQS duplicates, the sweep's re-enqueue), so two
    /// workers may be handed one delivery together: only the one holding the claim sends.
    async fn claim_delivery(
        &self,
        delivery: &Delivery,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;
    async fn list_deliveries(&self, query: &DeliveryQuery) -> StoreResult<DeliveryPage>;
    async fn delivery_counts(&self) -> StoreResult<DeliveryCounts>;

    /// Takes the subscription's next free slot on `lane` and returns how long after `now`
    /// it is (zero: now). Every call takes a different slot, one interval after the last,
    /// so the caller owns what it was given and waits for it. Holds across processes:
    /// taking a slot is one atomic update of the lane's theoretical arrival time (GCRA).
    async fn reserve_rate_slot(
        &self,
        id: &SubscriptionId,
        lane: RateLane,
        per_minute: u32,
        now: DateTime<Utc>,
    ) -> StoreResult<std::time::Duration>;
}

/// A subscription's rate limit keeps two schedules of slots, one interval apart each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateLane {
    /// When a waiting delivery is woken: each takes its own slot once, so a backlog is
    /// received about once per delivery rather than once per freed slot.
    Wake,
    /// When a request is actually sent: a delivery the queue woke late must not go out
    /// on the heels of another, so the spacing holds at the subscriber.
    Send,
}
