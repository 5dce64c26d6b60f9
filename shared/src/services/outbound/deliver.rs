//! Deliver one message: the step both hosts run, under the SQS event source on Lambda and
//! under the local queue's loop in `nexus serve`.

use std::time::{Duration, Instant};

use chrono::Utc;

use super::retry_policy;
use crate::domain::outbound::{
    after, classify, decide, parse_retry_after, signature_headers, slot_still_usable,
    truncate_body, Attempt, Decision, Delivery, DeliveryStatus, Event, Subscription,
    SubscriptionId, MAX_RESPONSE_BODY_BYTES,
};
use crate::ports::http_client::TransportError;
use crate::ports::outbound::RateLane;
use crate::ports::queue::{QueueMessage, Received};
use crate::services::{AppState, ServiceResult};

/// What the host does with the message after the step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition {
    /// Done (delivered, failed for good with nothing left to do, or nothing to deliver).
    Delete,
    /// Make the message visible again after this delay.
    RetryIn(Duration),
    /// Failed after the last attempt: move the message to the dead-letter queue.
    DeadLetter,
}

/// The longest a message may be held back in one go (SQS's visibility limit is 12 hours).
const MAX_HOLD: Duration = Duration::from_secs(12 * 3600);

/// How early a delivery may be sent: queues wake a message a little before or after its
/// time, and holding it back again for less than this is not worth a receive.
const EARLY_GRACE: Duration = Duration::from_millis(500);

/// Delivers the message's delivery once, if it is due, and records the attempt.
pub async fn deliver_one(state: &AppState, message: &QueueMessage) -> ServiceResult<Disposition> {
    let QueueMessage::Deliver { delivery_id } = message;
    let Some(mut delivery) = state.outbound.get_delivery(delivery_id).await? else {
        tracing::warn!(%delivery_id, "queued delivery not found; dropping the message");
        return Ok(Disposition::Delete);
    };
    if matches!(
        delivery.status,
        DeliveryStatus::Success | DeliveryStatus::Failed
    ) {
        // A duplicate message (at-least-once queues) for a delivery that is settled.
        return Ok(Disposition::Delete);
    }
    let now = state.clock.now();
    // Queues keep delays coarsely (SQS: whole seconds, rounded up), so a message is asked
    // back `resolution` early and waits out the rest here: a rate-limit slot is kept to
    // the millisecond, not to the next whole second.
    let resolution = state.queue.delay_resolution();
    let due_by = after(now, EARLY_GRACE + resolution);
    if let Some(due) = delivery.next_attempt_at.filter(|due| *due > due_by) {
        let early = (due - now).to_std().unwrap_or_default();
        return Ok(Disposition::RetryIn((early - resolution).min(MAX_HOLD)));
    }
    let Some(subscription) = state
        .outbound
        .get_subscription(&delivery.subscription_id)
        .await?
    else {
        return settle_without_sending(state, delivery, "the subscription was deleted").await;
    };
    if !subscription.active {
        return settle_without_sending(state, delivery, "the subscription is disabled").await;
    }
    let Some(event) = state.outbound.get_event(&delivery.event_id).await? else {
        return settle_without_sending(state, delivery, "the event is gone").await;
    };
    let limit = subscription
        .rate_limit
        .unwrap_or(state.config.outbound.default_rate_limit);
    if limit > 0 {
        let woken_for = match delivery.rate_slot_due_by(due_by) {
            // Back for the slot it took earlier.
            Some(slot) => slot,
            None => {
                // Read again: the reads above took time, and a slot taken in the past would
                // bring the next one closer than the limit allows.
                let reserved_at = state.clock.now();
                let wait = state
                    .outbound
                    .reserve_rate_slot(&subscription.id, RateLane::Wake, limit, reserved_at)
                    .await?;
                if wait > resolution {
                    // Over the limit: the delivery took a later slot and waits for it, never
                    // dropped, and no attempt is spent on it. Recorded, so that when the
                    // message comes back it is sent without competing for a slot again
                    // (each receive counts toward the queue's redrive limit).
                    delivery.hold_for_rate_slot(wait, reserved_at);
                    state.outbound.save_delivery(&delivery).await?;
                    return Ok(Disposition::RetryIn((wait - resolution).min(MAX_HOLD)));
                }
                after(reserved_at, wait)
            }
        };
        take_send_slot(state, &subscription.id, limit, woken_for).await?;
    }
    // Queues deliver at least once, so another worker may have been handed this delivery
    // too: only the claim's holder sends. The claim covers the request and its record.
    let claimed_at = state.clock.now();
    let claim_for = state.config.outbound.visibility_timeout();
    if !state
        .outbound
        .claim_delivery(&delivery, after(claimed_at, claim_for), claimed_at)
        .await?
    {
        // Attempted (or changed) by another worker: look again once any claim it holds has
        // ended. By then it is settled or rescheduled, or, if that worker died, due.
        tracing::info!(%delivery_id, "another worker holds this delivery; looking again later");
        return Ok(Disposition::RetryIn(claim_for.min(MAX_HOLD)));
    }
    attempt(state, &mut delivery, &subscription, &event).await
}

/// How often a send slot that passed while it was being taken is given up for a new one.
const SEND_SLOT_TRIES: u32 = 3;

/// Takes a send-lane slot no earlier than `not_before` and waits for it. The wake slots
/// space the deliveries out, but a queue may bring several back late together; the send
/// lane keeps the requests themselves an interval apart.
async fn take_send_slot(
    state: &AppState,
    subscription: &SubscriptionId,
    limit: u32,
    not_before: chrono::DateTime<Utc>,
) -> ServiceResult<()> {
    for _ in 0..SEND_SLOT_TRIES {
        let asked_for = not_before.max(state.clock.now());
        let wait = state
            .outbound
            .reserve_rate_slot(subscription, RateLane::Send, limit, asked_for)
            .await?;
        let slot = after(asked_for, wait);
        if slot_still_usable(slot, state.clock.now(), limit) {
            sleep_until(state, slot).await;
            return Ok(());
        }
    }
    Ok(())
}

/// Waits (in this process) until `at` by the state's clock; at once if it has passed.
async fn sleep_until(state: &AppState, at: chrono::DateTime<Utc>) {
    if let Ok(wait) = (at - state.clock.now()).to_std() {
        tokio::time::sleep(wait).await;
    }
}

/// Sends once, records the attempt and decides what comes next.
async fn attempt(
    state: &AppState,
    delivery: &mut Delivery,
    subscription: &Subscription,
    event: &Event,
) -> ServiceResult<Disposition> {
    let config = &state.config.outbound;
    let sent_at = state.clock.now();
    let body = event.payload();
    let mut headers = signature_headers(
        &delivery.id,
        &event.event_type,
        sent_at,
        &body,
        &subscription.signing_secrets(sent_at),
    );
    headers.push(("Content-Type", "application/json".to_owned()));
    headers.push((
        "User-Agent",
        concat!("Nexus-Webhooks/", env!("CARGO_PKG_VERSION")).to_owned(),
    ));

    let started = Instant::now();
    let response = state
        .http
        .post(
            subscription.url.as_str(),
            &headers,
            body,
            config.timeout,
            MAX_RESPONSE_BODY_BYTES + 1,
        )
        .await;
    let latency = started.elapsed();
    state
        .metrics
        .latency(subscription.id.as_str(), latency.as_secs_f64());

    let now = state.clock.now();
    let number = delivery.next_attempt_number();
    let (result, record) = match &response {
        Ok(response) => {
            let retry_after = response
                .retry_after
                .as_deref()
                .and_then(|v| parse_retry_after(v, Utc::now()));
            let (text, truncated) = truncate_body(&response.body, MAX_RESPONSE_BODY_BYTES);
            (
                classify(Some(response.status), false, retry_after),
                (Some(response.status), Some(text), truncated, None),
            )
        }
        Err(error) => (
            classify(None, matches!(error, TransportError::Timeout(_)), None),
            (None, None, false, Some(error.to_string())),
        ),
    };
    let (status_code, response_body, response_truncated, error) = record;
    let decision = decide(
        &retry_policy(config),
        number,
        &result,
        rand::random::<f64>(),
    );
    delivery.record(
        Attempt {
            number,
            at: sent_at,
            status_code,
            latency_ms: latency.as_millis() as u64,
            response_body,
            response_truncated,
            error,
        },
        &decision,
        now,
    );
    state.outbound.save_delivery(delivery).await?;

    let event_type = delivery.event_type.as_str();
    Ok(match (decision, delivery.status) {
        (Decision::Delivered, _) => {
            state.metrics.delivery(event_type, "success");
            Disposition::Delete
        }
        (Decision::Disable, _) => {
            // 410 Gone: the subscriber asks us to stop.
            let mut disabled = subscription.clone();
            disabled.active = false;
            disabled.updated_at = now;
            state.outbound.put_subscription(&disabled).await?;
            tracing::warn!(subscription = %subscription.id, "subscriber answered 410 Gone; subscription disabled");
            state.metrics.delivery(event_type, "failed");
            Disposition::Delete
        }
        (Decision::RetryIn(delay), DeliveryStatus::Retrying) => {
            state.metrics.retry(event_type);
            Disposition::RetryIn(delay.min(MAX_HOLD))
        }
        // A manual retry that failed: failed again, not rescheduled, and not dead-lettered
        // twice.
        (Decision::RetryIn(_), _) => {
            state.metrics.delivery(event_type, "failed");
            Disposition::Delete
        }
        (Decision::GiveUp, _) => {
            state.metrics.delivery(event_type, "failed");
            if delivery.manual {
                Disposition::Delete
            } else {
                Disposition::DeadLetter
            }
        }
    })
}

/// Fails a delivery that can no longer be sent, with the reason in its log.
async fn settle_without_sending(
    state: &AppState,
    mut delivery: Delivery,
    reason: &str,
) -> ServiceResult<Disposition> {
    let now = state.clock.now();
    let attempt = Attempt {
        number: delivery.next_attempt_number(),
        at: now,
        status_code: None,
        latency_ms: 0,
        response_body: None,
        response_truncated: false,
        error: Some(format!("not sent: {reason}")),
    };
    delivery.record(attempt, &Decision::GiveUp, now);
    state.outbound.save_delivery(&delivery).await?;
    state
        .metrics
        .delivery(delivery.event_type.as_str(), "failed");
    Ok(Disposition::Delete)
}

/// Delivers one received message and settles it with the queue, as the local host does
/// (Lambda settles through the SQS batch response instead).
pub async fn deliver_and_settle(state: &AppState, message: Received) {
    let outcome = deliver_one(state, &message.message).await;
    let settled = match outcome {
        Ok(Disposition::Delete) => state.queue.delete(&message.handle).await,
        Ok(Disposition::RetryIn(delay)) => state.queue.retry_in(&message.handle, delay).await,
        Ok(Disposition::DeadLetter) => state.queue.dead_letter(&message).await,
        Err(error) => {
            // Left invisible until its visibility timeout ends; then it is tried again.
            tracing::error!(%error, "delivering a message failed");
            Ok(())
        }
    };
    if let Err(error) = settled {
        tracing::error!(%error, "settling a queue message failed");
    }
}
