//! The sweep for stranded deliveries on DynamoDB and SQS (moto): deliveries stored without
//! a queue message, as a publish whose SQS send failed leaves them, are re-enqueued once
//! overdue by `NEXUS_SWEEP_AFTER` (15 min by default), and no other pending delivery is;
//! the deliver handler under the emulated SQS event source then sends them. Every schedule
//! event fixture in `events/` goes through the sweep Lambda's handler.

use std::time::Duration;

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use chrono::{DateTime, TimeDelta, Utc};
use nexus_shared::adapters::aws::app_state;
use nexus_shared::domain::outbound::{
    Attempt, Decision, Delivery, DeliveryStatus, Event, SubscriptionId,
};
use nexus_shared::lambda::{handle_schedule, SweepOutput};
use nexus_shared::ports::queue::QueueMessage;
use nexus_shared::services::outbound::deliveries::MAX_PAGE;
use nexus_shared::services::outbound::sweep::requeue_stranded;
use nexus_shared::services::AppState;

use super::{event, moto, secret, subscription};
use crate::lambda_events::fixtures;
use crate::outbound_support::{assert_signed, eventually};
use crate::receiver::Receiver;

/// Longer ago than the default `NEXUS_SWEEP_AFTER`.
fn overdue() -> DateTime<Utc> {
    Utc::now() - TimeDelta::minutes(20)
}

/// Stores `event` and `deliveries` as a publish does, and enqueues nothing.
async fn store_without_queueing(state: &AppState, event: &Event, deliveries: &[Delivery]) {
    state
        .outbound
        .publish(event, deliveries, None, event.timestamp)
        .await
        .unwrap();
}

/// The delivery ids of the messages waiting in the queue, taking them all.
async fn queued_ids(state: &AppState, count: usize) -> Vec<String> {
    let mut ids = Vec::new();
    while ids.len() < count {
        let received = eventually("the swept messages", || async {
            let batch = state.queue.receive(10, Duration::from_secs(30)).await;
            Some(batch.unwrap()).filter(|b| !b.is_empty())
        })
        .await;
        ids.extend(received.into_iter().map(|r| {
            let QueueMessage::Deliver { delivery_id } = r.message;
            delivery_id.to_string()
        }));
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_stranded_delivery_is_requeued_and_the_event_source_then_delivers_it() {
    let Some((sdk, config)) = moto().await else {
        return;
    };
    let queue_url = config.outbound.queue_url.clone().unwrap();
    let state = app_state(&sdk, config).unwrap();
    let receiver = Receiver::start().await;
    let target = subscription(&receiver.url(), "*");
    state.outbound.put_subscription(&target).await.unwrap();
    let published = event("build.completed", overdue());
    let at = published.timestamp;
    let new = |created| Delivery::new(&published, target.id.clone(), created);

    let stranded = new(at);
    let recent = new(Utc::now() - TimeDelta::minutes(1));
    // Its message sleeps until the slot it took, ten minutes from now.
    let mut rate_held = new(at);
    rate_held.hold_for_rate_slot(Duration::from_secs(30 * 60), at);
    let mut retrying = new(at);
    let failure = Attempt {
        number: 1,
        at,
        status_code: Some(500),
        latency_ms: 3,
        response_body: None,
        response_truncated: false,
        error: None,
    };
    retrying.record(failure, &Decision::RetryIn(Duration::from_secs(1)), at);
    // A manual retry asked for a minute ago: its message is still on its way.
    let mut manual = new(at);
    manual.manual = true;
    manual.next_attempt_at = Some(Utc::now() - TimeDelta::minutes(1));
    let others = [recent, rate_held, retrying, manual];
    let mut all = vec![stranded.clone()];
    all.extend(others.iter().cloned());
    store_without_queueing(&state, &published, &all).await;

    assert_eq!(requeue_stranded(&state, Utc::now()).await.unwrap(), 1);
    assert_eq!(state.queue.approximate_size().await.unwrap(), 1);

    let source = tokio::spawn(crate::outbound_event_source::run(
        sdk,
        state.clone(),
        queue_url,
    ));
    let arrived = receiver.wait_for(1).await;
    assert_eq!(arrived[0].header("x-nexus-delivery"), stranded.id.as_str());
    assert_signed(&arrived[0], &secret(), &[&secret()]);
    eventually(
        "the swept delivery to succeed and leave the queue",
        || async {
            let delivery = state.outbound.get_delivery(&stranded.id).await.unwrap()?;
            let size = state.queue.approximate_size().await.unwrap();
            (delivery.status == DeliveryStatus::Success && size == 0).then_some(())
        },
    )
    .await;
    source.abort();

    assert_eq!(receiver.requests().len(), 1);
    for other in &others {
        let stored = state.outbound.get_delivery(&other.id).await.unwrap();
        assert_eq!(stored.as_ref(), Some(other), "left alone");
    }
    assert_eq!(
        requeue_stranded(&state, Utc::now()).await.unwrap(),
        0,
        "a delivered one is not stranded"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranded_delivery_behind_a_full_page_of_younger_ones_is_found() {
    let Some((sdk, config)) = moto().await else {
        return;
    };
    let state = app_state(&sdk, config).unwrap();
    let target = SubscriptionId::new();
    let old = event("build.completed", overdue());
    let stranded = Delivery::new(&old, target.clone(), old.timestamp);
    store_without_queueing(&state, &old, std::slice::from_ref(&stranded)).await;
    // Created later, so listed first (newest first): they fill the first page.
    let young = event("build.completed", Utc::now());
    let fresh: Vec<Delivery> = (0..MAX_PAGE)
        .map(|_| Delivery::new(&young, target.clone(), young.timestamp))
        .collect();
    store_without_queueing(&state, &young, &fresh).await;

    assert_eq!(requeue_stranded(&state, Utc::now()).await.unwrap(), 1);
    assert_eq!(queued_ids(&state, 1).await, [stranded.id.to_string()]);
    assert_eq!(state.queue.approximate_size().await.unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_schedule_event_fixture_goes_through_the_sweep_handler() {
    let Some((sdk, config)) = moto().await else {
        return;
    };
    let state = app_state(&sdk, config).unwrap();
    let mut checked = Vec::new();
    for (name, json) in fixtures(|json| json["source"] == "aws.events") {
        let event: EventBridgeEvent = serde_json::from_value(json).unwrap();
        assert_eq!(event.detail_type, "Scheduled Event", "{name}");
        match name.as_str() {
            "schedule-sweep.json" => {
                let old = super::event("build.completed", overdue());
                let stranded = Delivery::new(&old, SubscriptionId::new(), old.timestamp);
                store_without_queueing(&state, &old, std::slice::from_ref(&stranded)).await;
                let output = handle_schedule(&state, event).await.unwrap();
                assert_eq!(output, SweepOutput { requeued: 1 }, "{name}");
                assert_eq!(
                    serde_json::to_value(output).unwrap(),
                    serde_json::json!({"requeued": 1})
                );
                assert_eq!(queued_ids(&state, 1).await, [stranded.id.to_string()]);
            }
            other => panic!("events/{other} has no expected outcome here: add one"),
        }
        checked.push(name);
    }
    assert_eq!(checked, ["schedule-sweep.json"]);
}
