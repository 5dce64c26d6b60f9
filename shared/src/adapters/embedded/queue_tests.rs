//! The SQLite queue keeps SQS's semantics: delays, visibility, receive counts, redrive.

use std::sync::Mutex;

use crate::domain::outbound::{
    Delivery, DeliveryStatus, Event, EventId, EventType, OutboundDeliveryId, SubscriptionId,
};
use crate::ports::OutboundStore;

use super::*;

/// A clock the test moves by hand.
struct TestClock(Mutex<DateTime<Utc>>);

impl TestClock {
    fn new() -> Arc<Self> {
        Arc::new(Self(Mutex::new(
            DateTime::from_timestamp(1_795_400_000, 0).unwrap(),
        )))
    }

    fn advance(&self, by: Duration) {
        *self.0.lock().unwrap() += by;
    }
}

impl Clock for TestClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

/// Bind `_dir` by name in tests: the database lives in it.
struct Fixture {
    _dir: tempfile::TempDir,
    queue: Arc<SqliteQueue>,
    clock: Arc<TestClock>,
}

async fn queue(max_receive_count: u32) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let clock = TestClock::new();
    let queue = open(&dir, max_receive_count, clock.clone()).await;
    Fixture {
        _dir: dir,
        queue: Arc::new(queue),
        clock,
    }
}

async fn open(
    dir: &tempfile::TempDir,
    max_receive_count: u32,
    clock: Arc<TestClock>,
) -> SqliteQueue {
    let outbound = SqliteOutbound::open(dir.path().join("outbound.db")).unwrap();
    SqliteQueue::open(&outbound, max_receive_count, clock)
        .await
        .unwrap()
}

fn message() -> QueueMessage {
    QueueMessage::Deliver {
        delivery_id: OutboundDeliveryId::new(),
    }
}

const SECOND: Duration = Duration::from_secs(1);
const VISIBILITY: Duration = Duration::from_secs(30);

#[tokio::test]
async fn a_delayed_message_is_received_only_once_its_delay_has_passed() {
    let Fixture { _dir, queue, clock } = queue(5).await;
    let sent = message();
    queue.send(&sent, 10 * SECOND).await.unwrap();

    assert!(queue.receive(10, VISIBILITY).await.unwrap().is_empty());
    assert_eq!(queue.approximate_size().await.unwrap(), 1, "delayed counts");
    clock.advance(10 * SECOND);
    let received = queue.receive(10, VISIBILITY).await.unwrap();

    assert_eq!(received.len(), 1);
    assert_eq!(received[0].message, sent);
    assert_eq!(received[0].receive_count, 1);
}

#[tokio::test]
async fn a_received_message_comes_back_after_its_visibility_timeout() {
    let Fixture { _dir, queue, clock } = queue(5).await;
    queue.send(&message(), Duration::ZERO).await.unwrap();
    let first = queue.receive(10, VISIBILITY).await.unwrap();
    assert_eq!(first.len(), 1);

    clock.advance(VISIBILITY - SECOND);
    assert!(queue.receive(10, VISIBILITY).await.unwrap().is_empty());
    assert_eq!(queue.approximate_size().await.unwrap(), 0, "in flight");
    clock.advance(SECOND);
    let again = queue.receive(10, VISIBILITY).await.unwrap();

    assert_eq!(again.len(), 1);
    assert_eq!(again[0].message, first[0].message);
    assert_eq!(again[0].receive_count, 2);
    assert_ne!(again[0].handle, first[0].handle);
}

#[tokio::test]
async fn retry_in_makes_a_message_visible_after_the_delay_and_stale_handles_do_nothing() {
    let Fixture { _dir, queue, clock } = queue(5).await;
    queue.send(&message(), Duration::ZERO).await.unwrap();
    let first = queue.receive(1, VISIBILITY).await.unwrap().remove(0);
    clock.advance(VISIBILITY);
    let second = queue.receive(1, VISIBILITY).await.unwrap().remove(0);

    // The first receiver timed out: its retry must not move the message under the second.
    queue.retry_in(&first.handle, Duration::ZERO).await.unwrap();
    assert!(queue.receive(1, VISIBILITY).await.unwrap().is_empty());
    queue.retry_in(&second.handle, 5 * SECOND).await.unwrap();
    clock.advance(4 * SECOND);
    assert!(queue.receive(1, VISIBILITY).await.unwrap().is_empty());
    clock.advance(SECOND);

    let third = queue.receive(1, VISIBILITY).await.unwrap();
    assert_eq!(third.len(), 1);
    assert_eq!(third[0].receive_count, 3);
}

#[tokio::test]
async fn a_deleted_message_is_gone_for_good() {
    let Fixture { _dir, queue, clock } = queue(5).await;
    queue.send(&message(), Duration::ZERO).await.unwrap();
    queue.send(&message(), Duration::ZERO).await.unwrap();
    let received = queue.receive(1, VISIBILITY).await.unwrap().remove(0);

    queue.delete(&received.handle).await.unwrap();
    clock.advance(VISIBILITY);

    let rest = queue.receive(10, VISIBILITY).await.unwrap();
    assert_eq!(rest.len(), 1);
    assert_ne!(rest[0].message, received.message);
    assert_eq!(rest[0].receive_count, 1);
    assert!(queue.delete("not-a-handle").await.is_err());
}

#[tokio::test]
async fn a_message_received_more_than_max_receive_count_times_is_dead_lettered() {
    let Fixture { _dir, queue, clock } = queue(2).await;
    let sent = message();
    queue.send(&sent, Duration::ZERO).await.unwrap();
    for count in 1..=2 {
        let received = queue.receive(10, VISIBILITY).await.unwrap();
        assert_eq!(received[0].receive_count, count);
        clock.advance(VISIBILITY);
    }

    assert!(queue.receive(10, VISIBILITY).await.unwrap().is_empty());

    let dead = queue.dead_letters().await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].message, Some(sent));
    assert_eq!(dead[0].receive_count, 2);
    assert_eq!(dead[0].dead_lettered_at, clock.now());
    assert_eq!(queue.approximate_size().await.unwrap(), 0);
}

#[tokio::test]
async fn dead_letter_moves_a_received_message_with_its_body_and_receive_count() {
    let Fixture { _dir, queue, clock } = queue(5).await;
    let sent = message();
    queue.send(&sent, Duration::ZERO).await.unwrap();
    let received = queue.receive(1, VISIBILITY).await.unwrap().remove(0);

    queue.dead_letter(&received).await.unwrap();
    clock.advance(VISIBILITY);

    assert!(queue.receive(10, VISIBILITY).await.unwrap().is_empty());
    let dead = queue.dead_letters().await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].message, Some(sent));
    assert_eq!(
        dead[0].body,
        serde_json::to_string(&dead[0].message).unwrap()
    );
    assert_eq!(dead[0].receive_count, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_receivers_never_get_the_same_message() {
    let Fixture { _dir, queue, .. } = queue(5).await;
    for _ in 0..200 {
        queue.send(&message(), Duration::ZERO).await.unwrap();
    }

    let receivers: Vec<_> = (0..16)
        .map(|_| {
            let queue = queue.clone();
            tokio::spawn(async move {
                let mut got = Vec::new();
                loop {
                    let batch = queue.receive(5, VISIBILITY).await.unwrap();
                    if batch.is_empty() {
                        return got;
                    }
                    got.extend(batch.into_iter().map(|r| r.message));
                }
            })
        })
        .collect();
    let mut all = Vec::new();
    for receiver in receivers {
        all.extend(receiver.await.unwrap());
    }

    assert_eq!(all.len(), 200);
    let distinct: std::collections::HashSet<_> = all
        .iter()
        .map(|QueueMessage::Deliver { delivery_id }| delivery_id.clone())
        .collect();
    assert_eq!(distinct.len(), 200);
}

#[tokio::test]
async fn delays_visibility_and_sizes_over_sqs_limits_are_refused() {
    let Fixture { _dir, queue, .. } = queue(5).await;
    assert!(queue.send(&message(), MAX_DELAY + SECOND).await.is_err());
    assert!(queue.receive(1, MAX_VISIBILITY + SECOND).await.is_err());
    assert!(queue
        .retry_in("1.1", MAX_VISIBILITY + SECOND)
        .await
        .is_err());
    queue.send(&message(), MAX_DELAY).await.unwrap();
    assert_eq!(queue.approximate_size().await.unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_wakes_a_parked_consumer_at_once() {
    let Fixture { _dir, queue, .. } = queue(5).await;
    let waiter = {
        let queue = queue.clone();
        tokio::spawn(async move { queue.wait_for_work(Duration::from_secs(3600)).await })
    };
    while queue.parked_consumers() == 0 {
        tokio::task::yield_now().await;
    }

    // Even a delayed message wakes it: the consumer recomputes when work is due.
    queue.send(&message(), MAX_DELAY).await.unwrap();

    tokio::time::timeout(Duration::from_secs(30), waiter)
        .await
        .expect("the send woke the consumer")
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn wait_for_work_returns_when_the_earliest_hidden_message_becomes_visible() {
    let Fixture { _dir, queue, .. } = queue(5).await;
    queue.send(&message(), 40 * SECOND).await.unwrap();
    queue.send(&message(), 20 * SECOND).await.unwrap();
    let start = tokio::time::Instant::now();

    queue.wait_for_work(Duration::from_secs(3600)).await;

    let waited = start.elapsed();
    assert!(waited >= 20 * SECOND && waited < 21 * SECOND, "{waited:?}");
}

#[tokio::test(start_paused = true)]
async fn wait_for_work_returns_at_once_when_a_message_is_visible() {
    let Fixture { _dir, queue, .. } = queue(5).await;
    queue.send(&message(), Duration::ZERO).await.unwrap();
    let start = tokio::time::Instant::now();

    queue.wait_for_work(Duration::from_secs(3600)).await;

    assert_eq!(start.elapsed(), Duration::ZERO);
}

#[tokio::test]
async fn opening_queues_every_pending_or_retrying_delivery_when_it_is_due() {
    let dir = tempfile::tempdir().unwrap();
    let clock = TestClock::new();
    let outbound = SqliteOutbound::open(dir.path().join("outbound.db")).unwrap();
    let now = clock.now();
    let event = Event::new(
        EventId::new(),
        EventType::parse("build.completed").unwrap(),
        "ci".into(),
        serde_json::json!({}),
        serde_json::Map::new(),
        now,
    );
    let [pending, mut retrying, mut settled] =
        std::array::from_fn(|_| Delivery::new(&event, SubscriptionId::new(), now));
    outbound
        .publish(
            &event,
            &[pending.clone(), retrying.clone(), settled.clone()],
            None,
            now,
        )
        .await
        .unwrap();
    retrying.status = DeliveryStatus::Retrying;
    retrying.next_attempt_at = Some(now + 10 * SECOND);
    outbound.save_delivery(&retrying).await.unwrap();
    settled.status = DeliveryStatus::Success;
    settled.next_attempt_at = None;
    outbound.save_delivery(&settled).await.unwrap();

    // What a restart does: the queue of the last run is gone, its deliveries are not.
    let queue = SqliteQueue::open(&outbound, 5, clock.clone())
        .await
        .unwrap();

    let due = queue.receive(10, VISIBILITY).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].message, deliver(&pending));
    clock.advance(10 * SECOND);
    let later = queue.receive(10, VISIBILITY).await.unwrap();
    assert_eq!(later.len(), 1);
    assert_eq!(later[0].message, deliver(&retrying));
    clock.advance(VISIBILITY);
    let again: Vec<QueueMessage> = queue
        .receive(10, VISIBILITY)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.message)
        .collect();
    assert!(
        !again.contains(&deliver(&settled)),
        "a settled delivery is never queued"
    );
}

fn deliver(delivery: &Delivery) -> QueueMessage {
    QueueMessage::Deliver {
        delivery_id: delivery.id.clone(),
    }
}

#[tokio::test]
async fn a_batch_send_enqueues_every_message_in_order() {
    let Fixture { _dir, queue, .. } = queue(5).await;
    let sent: Vec<QueueMessage> = (0..50).map(|_| message()).collect();

    queue.send_batch(&sent, Duration::ZERO).await.unwrap();

    let received = queue.receive(100, VISIBILITY).await.unwrap();
    let got: Vec<QueueMessage> = received.into_iter().map(|r| r.message).collect();
    assert_eq!(got, sent, "in the order sent");
}
