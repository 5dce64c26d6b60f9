//! The delivery log: history, pending retries, manual retry, statistics.

use std::collections::BTreeMap;

use super::publish::enqueue;
use crate::domain::outbound::{Delivery, DeliveryStatus, OutboundDeliveryId, SubscriptionId};
use crate::ports::outbound::{DeliveryPage, DeliveryQuery};
use crate::services::{AppState, ServiceError, ServiceResult};

/// Largest page of deliveries.
pub const MAX_PAGE: usize = 500;

pub async fn list(
    state: &AppState,
    subscription_id: Option<SubscriptionId>,
    status: Option<DeliveryStatus>,
    after: Option<OutboundDeliveryId>,
    limit: Option<usize>,
) -> ServiceResult<DeliveryPage> {
    let limit = limit.unwrap_or(50);
    if limit == 0 || limit > MAX_PAGE {
        return Err(ServiceError::BadRequest(format!(
            "limit must be between 1 and {MAX_PAGE}"
        )));
    }
    let query = DeliveryQuery {
        subscription_id,
        status,
        after,
        limit,
    };
    Ok(state.outbound.list_deliveries(&query).await?)
}

pub async fn get(state: &AppState, id: &OutboundDeliveryId) -> ServiceResult<Delivery> {
    state
        .outbound
        .get_delivery(id)
        .await?
        .ok_or(ServiceError::NotFound("delivery"))
}

/// Deliveries waiting for their first attempt or a retry, soonest first.
pub async fn pending(state: &AppState, limit: usize) -> ServiceResult<Vec<Delivery>> {
    let mut waiting = Vec::new();
    for status in [DeliveryStatus::Retrying, DeliveryStatus::Pending] {
        let query = DeliveryQuery {
            status: Some(status),
            limit,
            ..DeliveryQuery::default()
        };
        waiting.extend(state.outbound.list_deliveries(&query).await?.deliveries);
    }
    waiting.sort_by_key(|d| d.next_attempt_at);
    waiting.truncate(limit);
    Ok(waiting)
}

/// Sends a delivery once more, now. A manual retry is a single attempt: if it fails, the
/// delivery is failed again rather than rescheduled.
pub async fn retry(state: &AppState, id: &OutboundDeliveryId) -> ServiceResult<Delivery> {
    let mut delivery = get(state, id).await?;
    if matches!(
        delivery.status,
        DeliveryStatus::Pending | DeliveryStatus::Sending
    ) {
        return Err(ServiceError::Conflict(
            "the delivery is already waiting to be sent",
        ));
    }
    delivery.retry_manually(state.clock.now());
    state.outbound.save_delivery(&delivery).await?;
    enqueue(state, std::iter::once(&delivery.id)).await?;
    Ok(delivery)
}

/// The brief's `GET /api/v1/stats`.
#[derive(Debug, serde::Serialize)]
pub struct Stats {
    pub total_subscriptions: usize,
    pub active_subscriptions: usize,
    pub total_events_processed: u64,
    pub successful_deliveries: u64,
    pub failed_deliveries: u64,
    pub pending_retries: u64,
    pub avg_delivery_time_ms: f64,
    pub events_by_type: BTreeMap<String, u64>,
}

pub async fn stats(state: &AppState) -> ServiceResult<Stats> {
    let subscriptions = state.outbound.list_subscriptions().await?;
    let counts = state.outbound.delivery_counts().await?;
    let avg = if counts.succeeded == 0 {
        0.0
    } else {
        counts.success_latency_ms_total as f64 / counts.succeeded as f64
    };
    Ok(Stats {
        total_subscriptions: subscriptions.len(),
        active_subscriptions: subscriptions.iter().filter(|s| s.active).count(),
        total_events_processed: counts.events,
        successful_deliveries: counts.succeeded,
        failed_deliveries: counts.failed,
        pending_retries: counts.pending,
        avg_delivery_time_ms: (avg * 10.0).round() / 10.0,
        events_by_type: counts.events_by_type,
    })
}

/// The gauges read at scrape time: active subscriptions per event pattern, and the number
/// of messages waiting in the delivery queue.
pub async fn gauges(state: &AppState) -> ServiceResult<(BTreeMap<String, u64>, u64)> {
    let mut active: BTreeMap<String, u64> = BTreeMap::new();
    for subscription in state.outbound.list_subscriptions().await?.iter() {
        if subscription.active {
            for pattern in &subscription.events {
                *active.entry(pattern.as_str().to_owned()).or_default() += 1;
            }
        }
    }
    Ok((active, state.queue.approximate_size().await?))
}
