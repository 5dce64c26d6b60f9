//! `SqsQueue` on moto: the queue semantics both backends share.

use std::time::{Duration, Instant};

use nexus_shared::adapters::aws::SqsQueue;
use nexus_shared::domain::outbound::OutboundDeliveryId;
use nexus_shared::ports::queue::{DeliveryQueue, QueueMessage, Received};

use super::moto;
use crate::outbound_support::eventually;

const VISIBILITY: Duration = Duration::from_secs(30);

fn message() -> QueueMessage {
    QueueMessage::Deliver {
        delivery_id: OutboundDeliveryId::new(),
    }
}

/// The queue under test, and one reading its DLQ as a queue of its own.
async fn queues() -> Option<(SqsQueue, SqsQueue)> {
    let (sdk, config) = moto().await?;
    let client = aws_sdk_sqs::Client::new(&sdk);
    let (url, dlq) = (
        config.outbound.queue_url.unwrap(),
        config.outbound.dlq_url.unwrap(),
    );
    Some((
        SqsQueue::new(client.clone(), url, dlq.clone()),
        SqsQueue::new(client, dlq.clone(), dlq),
    ))
}

async fn receive_one(queue: &SqsQueue, what: &str) -> Received {
    eventually(what, || async {
        queue.receive(1, VISIBILITY).await.unwrap().pop()
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delayed_message_stays_hidden_until_due() {
    let Some((queue, _)) = queues().await else {
        return;
    };
    let sent = message();
    let started = Instant::now();
    queue.send(&sent, Duration::from_secs(2)).await.unwrap();
    assert!(queue.receive(10, VISIBILITY).await.unwrap().is_empty());
    let received = receive_one(&queue, "the delayed message").await;
    assert!(
        started.elapsed() >= Duration::from_millis(1_900),
        "{:?}",
        started.elapsed()
    );
    assert_eq!((received.message, received.receive_count), (sent, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_in_brings_a_message_back_after_the_delay_with_its_receive_count() {
    let Some((queue, _)) = queues().await else {
        return;
    };
    let sent = message();
    queue.send(&sent, Duration::ZERO).await.unwrap();
    let first = receive_one(&queue, "the message").await;
    assert_eq!(first.receive_count, 1);
    let started = Instant::now();
    queue
        .retry_in(&first.handle, Duration::from_secs(1))
        .await
        .unwrap();
    let again = receive_one(&queue, "the retried message").await;
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    assert_eq!((again.message, again.receive_count), (sent, 2));
    queue.delete(&again.handle).await.unwrap();
    assert_eq!(queue.approximate_size().await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_lettered_message_leaves_the_queue_for_the_dlq() {
    let Some((queue, dlq)) = queues().await else {
        return;
    };
    let sent = message();
    queue.send(&sent, Duration::ZERO).await.unwrap();
    let received = receive_one(&queue, "the message").await;
    queue.dead_letter(&received).await.unwrap();
    assert_eq!(queue.approximate_size().await.unwrap(), 0);
    let dead = receive_one(&dlq, "the message in the DLQ").await;
    assert_eq!(dead.message, sent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_size_counts_waiting_delayed_and_in_flight_messages() {
    let Some((queue, _)) = queues().await else {
        return;
    };
    queue.send(&message(), Duration::ZERO).await.unwrap();
    receive_one(&queue, "the first message").await;
    queue.send(&message(), Duration::ZERO).await.unwrap();
    queue
        .send(&message(), Duration::from_secs(600))
        .await
        .unwrap();
    assert_eq!(queue.approximate_size().await.unwrap(), 3);
}
