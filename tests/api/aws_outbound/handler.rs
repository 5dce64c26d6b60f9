//! The deliver Lambda's handler, `handle_sqs_batch`, on SQS and DynamoDB (moto) with real
//! receivers: partial batch failures, retries by visibility, the DLQ, and every SQS event
//! fixture in `events/`.

use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use aws_sdk_sqs::types::MessageSystemAttributeName;
use chrono::Utc;
use nexus_shared::adapters::aws::{app_state, SqsQueue};
use nexus_shared::domain::outbound::{Delivery, DeliveryStatus, NewEvent, OutboundDeliveryId};
use nexus_shared::lambda::handle_sqs_batch;
use nexus_shared::ports::queue::{DeliveryQueue, QueueMessage};
use nexus_shared::services::outbound::publish::publish;
use nexus_shared::services::AppState;
use serde_json::{json, Value};

use super::{moto, secret, subscription};
use crate::helpers::DEADLINE;
use crate::lambda_events::fixtures;
use crate::outbound_support::{assert_signed, eventually};
use crate::receiver::{Answer, Receiver};

/// Receives `count` messages from `url` and hands them over as the SQS event source does.
async fn receive_event(sdk: &aws_config::SdkConfig, url: &str, count: usize) -> SqsEvent {
    let client = aws_sdk_sqs::Client::new(sdk);
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let mut records = Vec::new();
    while records.len() < count {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} of {count} messages arrived",
            records.len()
        );
        let output = client
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .visibility_timeout(30)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .unwrap();
        for message in output.messages() {
            let count = message.attributes().unwrap()
                [&MessageSystemAttributeName::ApproximateReceiveCount]
                .clone();
            records.push(json!({
                "messageId": message.message_id(),
                "receiptHandle": message.receipt_handle(),
                "body": message.body(),
                "attributes": {"ApproximateReceiveCount": count},
                "eventSource": "aws:sqs",
            }));
        }
        if output.messages().is_empty() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    serde_json::from_value(json!({ "Records": records })).unwrap()
}

fn failed_ids(response: &SqsBatchResponse) -> Vec<String> {
    response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect()
}

/// What Lambda does with a batch response: deletes every message not reported failed.
async fn settle_as_lambda(state: &AppState, event: &SqsEvent, response: &SqsBatchResponse) {
    let failed = failed_ids(response);
    for record in &event.records {
        if !failed.contains(record.message_id.as_ref().unwrap()) {
            state
                .queue
                .delete(record.receipt_handle.as_ref().unwrap())
                .await
                .unwrap();
        }
    }
}

/// The message id of the record carrying `delivery`.
fn message_of(event: &SqsEvent, delivery: &OutboundDeliveryId) -> String {
    let record = event
        .records
        .iter()
        .find(|r| r.body.as_ref().unwrap().contains(delivery.as_str()));
    record
        .and_then(|r| r.message_id.clone())
        .expect("a message for the delivery")
}

fn new_event() -> NewEvent {
    serde_json::from_value(
        json!({"type": "build.completed", "source": "jenkins", "data": {"n": 1}}),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_failed_messages_are_reported_and_they_come_back_when_their_retry_is_due() {
    let Some((sdk, config)) = moto().await else {
        return;
    };
    let url = config.outbound.queue_url.clone().unwrap();
    let state = app_state(&sdk, config).unwrap();
    let failing = Receiver::scripted([Answer::status(500)]).await;
    let healthy = Receiver::start().await;
    let (to_failing, to_healthy) = (
        subscription(&failing.url(), "build.*"),
        subscription(&healthy.url(), "*"),
    );
    state.outbound.put_subscription(&to_failing).await.unwrap();
    state.outbound.put_subscription(&to_healthy).await.unwrap();
    let published = publish(&state, new_event(), None).await.unwrap();
    let id_for = |sub| {
        published
            .deliveries
            .iter()
            .find(|(_, s)| s == sub)
            .map(|(d, _)| d.clone())
            .unwrap()
    };
    let (failing_id, healthy_id) = (id_for(&to_failing.id), id_for(&to_healthy.id));

    let batch = receive_event(&sdk, &url, 2).await;
    let response = handle_sqs_batch(&state, batch.clone()).await;
    assert_eq!(failed_ids(&response), [message_of(&batch, &failing_id)]);
    settle_as_lambda(&state, &batch, &response).await;

    let arrived = healthy.wait_for(1).await;
    assert_eq!(arrived[0].header("x-nexus-delivery"), healthy_id.as_str());
    assert_signed(&arrived[0], &secret(), &[&secret()]);
    let retrying = state
        .outbound
        .get_delivery(&failing_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(retrying.status, DeliveryStatus::Retrying);
    assert_eq!(retrying.attempts[0].status_code, Some(500));

    // Its visibility was set to the backoff delay: it comes back then, received twice.
    let again = receive_event(&sdk, &url, 1).await;
    assert_eq!(again.records[0].attributes["ApproximateReceiveCount"], "2");
    assert_eq!(
        message_of(&again, &failing_id),
        message_of(&batch, &failing_id)
    );
    let response = handle_sqs_batch(&state, again.clone()).await;
    assert!(failed_ids(&response).is_empty());
    settle_as_lambda(&state, &again, &response).await;

    let requests = failing.wait_for(2).await;
    assert!(requests
        .iter()
        .all(|r| r.header("x-nexus-delivery") == failing_id.as_str()));
    let delivered = state
        .outbound
        .get_delivery(&failing_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (delivered.status, delivered.attempts.len()),
        (DeliveryStatus::Success, 2)
    );
    assert_eq!(state.queue.approximate_size().await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_queued_twice_is_sent_once_even_by_concurrent_workers() {
    let Some((sdk, config)) = moto().await else {
        return;
    };
    let url = config.outbound.queue_url.clone().unwrap();
    let state = app_state(&sdk, config).unwrap();
    // Slow enough that both messages are being worked on while the request is in flight.
    let slow = Receiver::scripted([Answer::status(200).delay(Duration::from_millis(500))]).await;
    let to_slow = subscription(&slow.url(), "*");
    state.outbound.put_subscription(&to_slow).await.unwrap();
    let published = publish(&state, new_event(), None).await.unwrap();
    let (id, _) = published.deliveries[0].clone();
    // A second message for the same delivery, as an SQS duplicate or the sweep makes one.
    let message = QueueMessage::Deliver {
        delivery_id: id.clone(),
    };
    state.queue.send(&message, Duration::ZERO).await.unwrap();

    let batch = receive_event(&sdk, &url, 2).await;
    let response = handle_sqs_batch(&state, batch.clone()).await;

    let arrived = slow.wait_for(1).await;
    assert_eq!(arrived[0].header("x-nexus-delivery"), id.as_str());
    let delivery = state.outbound.get_delivery(&id).await.unwrap().unwrap();
    assert_eq!(
        (delivery.status, delivery.attempts.len()),
        (DeliveryStatus::Success, 1)
    );
    // The worker without the claim hands its message back for later, when it finds the
    // delivery settled; the batch reports only that one.
    assert_eq!(failed_ids(&response).len(), 1);
    assert_eq!(slow.requests().len(), 1, "sent once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_out_of_retries_moves_to_the_dlq_and_is_not_reported_failed() {
    let Some((sdk, mut config)) = moto().await else {
        return;
    };
    config.outbound.max_retries = 0;
    let (url, dlq_url) = (
        config.outbound.queue_url.clone().unwrap(),
        config.outbound.dlq_url.clone().unwrap(),
    );
    let state = app_state(&sdk, config).unwrap();
    let failing = Receiver::scripted([Answer::status(503)]).await;
    state
        .outbound
        .put_subscription(&subscription(&failing.url(), "*"))
        .await
        .unwrap();
    let published = publish(&state, new_event(), None).await.unwrap();

    let batch = receive_event(&sdk, &url, 1).await;
    let response = handle_sqs_batch(&state, batch).await;
    assert!(failed_ids(&response).is_empty());
    let (delivery_id, _) = &published.deliveries[0];
    let failed = state
        .outbound
        .get_delivery(delivery_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(failed.status, DeliveryStatus::Failed);
    assert_eq!(state.queue.approximate_size().await.unwrap(), 0);
    let dlq = SqsQueue::new(aws_sdk_sqs::Client::new(&sdk), dlq_url.clone(), dlq_url);
    let dead = eventually("the message in the DLQ", || async {
        dlq.receive(1, Duration::from_secs(30)).await.unwrap().pop()
    })
    .await;
    let nexus_shared::ports::queue::QueueMessage::Deliver {
        delivery_id: dead_id,
    } = dead.message;
    assert_eq!(&dead_id, delivery_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sqs_event_fixture_goes_through_the_deliver_handler() {
    let Some((sdk, config)) = moto().await else {
        return;
    };
    let state = app_state(&sdk, config).unwrap();
    let receiver = Receiver::start().await;
    let mut checked = Vec::new();
    for (name, json) in fixtures(|json| json.get("Records").is_some()) {
        let event: SqsEvent = serde_json::from_value(json).unwrap();
        assert!(
            event
                .records
                .iter()
                .all(|r| r.event_source.as_deref() == Some("aws:sqs")),
            "{name}"
        );
        let message_ids: Vec<String> = event
            .records
            .iter()
            .map(|r| r.message_id.clone().unwrap())
            .collect();
        match name.as_str() {
            "sqs-deliver.json" => {
                let body: Value =
                    serde_json::from_str(event.records[0].body.as_ref().unwrap()).unwrap();
                let id = OutboundDeliveryId::parse(body["delivery_id"].as_str().unwrap()).unwrap();
                let target = subscription(&receiver.url(), "*");
                state.outbound.put_subscription(&target).await.unwrap();
                let published = super::event("build.completed", Utc::now());
                let delivery = Delivery {
                    id: id.clone(),
                    ..Delivery::new(&published, target.id.clone(), Utc::now())
                };
                state
                    .outbound
                    .publish(&published, &[delivery], None, Utc::now())
                    .await
                    .unwrap();
                let response = handle_sqs_batch(&state, event).await;
                assert!(failed_ids(&response).is_empty(), "{name}");
                let arrived = receiver.wait_for(1).await;
                assert_eq!(arrived[0].header("x-nexus-delivery"), id.as_str());
                assert_eq!(arrived[0].json()["id"], published.id.as_str());
                assert_signed(&arrived[0], &secret(), &[&secret()]);
            }
            "sqs-malformed.json" => {
                let response = handle_sqs_batch(&state, event).await;
                assert_eq!(
                    failed_ids(&response),
                    message_ids,
                    "{name}: every unreadable message fails"
                );
            }
            other => panic!("events/{other} has no expected outcome here: add one"),
        }
        checked.push(name);
    }
    assert_eq!(checked, ["sqs-deliver.json", "sqs-malformed.json"]);
}
