//! The sweep for stranded deliveries: stored by a publish that then failed to send their
//! queue messages (on AWS the SQS send comes after the store commit, and a repeat with the
//! same idempotency key sends nothing). `functions/sweep` runs it on a schedule; `nexus
//! serve` needs none, its queue being kept by the stored deliveries themselves.

use chrono::{DateTime, Utc};

use super::deliveries::MAX_PAGE;
use super::publish::enqueue;
use crate::domain::outbound::{DeliveryStatus, OutboundDeliveryId};
use crate::ports::outbound::DeliveryQuery;
use crate::services::{AppState, ServiceResult};

/// Re-enqueues every delivery that is stranded at `now` ([`is_stranded`] with
/// `NEXUS_SWEEP_AFTER`), a page of pending deliveries at a time; returns how many.
///
/// [`is_stranded`]: crate::domain::outbound::Delivery::is_stranded
pub async fn requeue_stranded(state: &AppState, now: DateTime<Utc>) -> ServiceResult<usize> {
    let threshold = state.config.outbound.sweep_after;
    let mut requeued = 0;
    let mut after = None;
    loop {
        let query = DeliveryQuery {
            status: Some(DeliveryStatus::Pending),
            after,
            limit: MAX_PAGE,
            ..DeliveryQuery::default()
        };
        let page = state.outbound.list_deliveries(&query).await?;
        let stranded: Vec<&OutboundDeliveryId> = page
            .deliveries
            .iter()
            .filter(|d| d.is_stranded(now, threshold))
            .map(|d| &d.id)
            .collect();
        requeued += stranded.len();
        enqueue(state, stranded.into_iter()).await?;
        match (page.more, page.deliveries.last()) {
            (true, Some(last)) => after = Some(last.id.clone()),
            _ => return Ok(requeued),
        }
    }
}
