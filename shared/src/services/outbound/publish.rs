//! Publishing: store the event, fan out one delivery per matching active subscription,
//! enqueue them. The answer comes only after all of it is durable.

use std::sync::Arc;
use std::time::Duration;

use crate::domain::outbound::{
    Delivery, Event, EventId, NewEvent, OutboundDeliveryId, SubscriptionId,
};
use crate::ports::outbound::{Publication, PublishOutcome};
use crate::ports::queue::QueueMessage;
use crate::services::{AppState, ServiceError, ServiceResult};

/// Most events one batch publish may carry.
pub const MAX_BATCH: usize = 100;
/// Longest accepted `Idempotency-Key`.
const MAX_KEY_LEN: usize = 255;

/// What a publish did.
#[derive(Debug, Clone)]
pub struct Published {
    pub event: Event,
    /// One delivery per matching subscription.
    pub deliveries: Vec<(OutboundDeliveryId, SubscriptionId)>,
    /// True when the idempotency key was seen before: nothing new was published.
    pub duplicate: bool,
}

/// Publishes one event.
pub async fn publish(
    state: &AppState,
    input: NewEvent,
    idempotency_key: Option<&str>,
) -> ServiceResult<Published> {
    let mut published =
        publish_batch(state, vec![(input, idempotency_key.map(str::to_owned))]).await?;
    Ok(published.remove(0))
}

/// Publishes events with their idempotency keys, in order, stored together where the store
/// can (one commit) and enqueued together.
pub async fn publish_batch(
    state: &AppState,
    inputs: Vec<(NewEvent, Option<String>)>,
) -> ServiceResult<Vec<Published>> {
    for key in inputs.iter().filter_map(|(_, key)| key.as_deref()) {
        if key.is_empty() || key.len() > MAX_KEY_LEN {
            return Err(ServiceError::BadRequest(format!(
                "Idempotency-Key must be 1 to {MAX_KEY_LEN} characters"
            )));
        }
    }
    let now = state.clock.now();
    let subscriptions = state.outbound.list_subscriptions().await?;
    let publications: Vec<Publication> = inputs
        .into_iter()
        .map(|(input, idempotency_key)| {
            let event = input.into_event(EventId::new(), now);
            let deliveries = subscriptions
                .iter()
                .filter(|s| s.matches(&event))
                .map(|s| Delivery::new(&event, s.id.clone(), now))
                .collect();
            Publication {
                event,
                deliveries,
                idempotency_key,
            }
        })
        .collect();

    let outcomes = state.outbound.publish_all(&publications, now).await?;
    let mut stored: Vec<&OutboundDeliveryId> = Vec::new();
    for (publication, outcome) in publications.iter().zip(&outcomes) {
        if *outcome == PublishOutcome::Stored {
            stored.extend(publication.deliveries.iter().map(|d| &d.id));
        }
    }
    enqueue(state, stored.into_iter()).await?;

    let mut published = Vec::with_capacity(publications.len());
    for (publication, outcome) in publications.into_iter().zip(outcomes) {
        published.push(match outcome {
            PublishOutcome::Stored => Published {
                deliveries: publication
                    .deliveries
                    .into_iter()
                    .map(|d| (d.id, d.subscription_id))
                    .collect(),
                event: publication.event,
                duplicate: false,
            },
            PublishOutcome::Duplicate {
                event_id,
                delivery_ids,
            } => first_publication(state, event_id, delivery_ids).await?,
        });
    }
    Ok(published)
}

/// Answers a repeated publish with what the first one did, sending nothing again: the
/// first publish's deliveries are already on their way (or in flight right now).
async fn first_publication(
    state: &AppState,
    event_id: EventId,
    delivery_ids: Vec<OutboundDeliveryId>,
) -> ServiceResult<Published> {
    let event =
        state.outbound.get_event(&event_id).await?.ok_or_else(|| {
            ServiceError::BadRequest("the idempotency key's event is gone".into())
        })?;
    let event = Arc::unwrap_or_clone(event);
    let mut deliveries = Vec::with_capacity(delivery_ids.len());
    for id in delivery_ids {
        if let Some(delivery) = state.outbound.get_delivery(&id).await? {
            deliveries.push((delivery.id, delivery.subscription_id));
        }
    }
    Ok(Published {
        event,
        deliveries,
        duplicate: true,
    })
}

pub(crate) async fn enqueue<'a>(
    state: &AppState,
    ids: impl Iterator<Item = &'a OutboundDeliveryId>,
) -> ServiceResult<()> {
    let messages: Vec<QueueMessage> = ids
        .map(|id| QueueMessage::Deliver {
            delivery_id: id.clone(),
        })
        .collect();
    match messages.as_slice() {
        [] => {}
        [message] => state.queue.send(message, Duration::ZERO).await?,
        messages => state.queue.send_batch(messages, Duration::ZERO).await?,
    }
    Ok(())
}
