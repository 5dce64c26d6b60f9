//! The stranded-delivery sweep, on the embedded adapters.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::requeue_stranded;
use crate::adapters::embedded::{EnvSecrets, SqliteOutbound, SqliteQueue, SqliteStore};
use crate::adapters::http_client::ReqwestClient;
use crate::adapters::metrics::Prometheus;
use crate::config::Config;
use crate::domain::outbound::{Delivery, Event, EventId, EventType, SubscriptionId};
use crate::ports::{Clock, DeliveryQueue};
use crate::services::AppState;

/// A clock the test moves by hand.
struct TestClock(Mutex<DateTime<Utc>>);

impl Clock for TestClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

#[tokio::test]
async fn a_stored_delivery_that_never_reached_the_queue_is_requeued_once_it_is_old_and_only_once() {
    let dir = tempfile::tempdir().unwrap();
    let start = DateTime::from_timestamp(1_795_400_000, 0).unwrap();
    let clock = Arc::new(TestClock(Mutex::new(start)));
    let outbound = Arc::new(SqliteOutbound::open(dir.path().join("outbound.db")).unwrap());
    let queue = Arc::new(
        SqliteQueue::open(&outbound, 10, clock.clone())
            .await
            .unwrap(),
    );
    let state = AppState {
        store: Arc::new(SqliteStore::open(dir.path().join("nexus.db")).unwrap()),
        secrets: Arc::new(EnvSecrets::from_vars([])),
        clock: clock.clone(),
        config: Arc::new(Config::default()),
        outbound: outbound.clone(),
        queue: queue.clone(),
        http: Arc::new(ReqwestClient::new(false, 64)),
        metrics: Arc::new(Prometheus::default()),
    };
    let event = Event {
        id: EventId::new(),
        event_type: EventType::parse("build.completed").unwrap(),
        source: "ci".into(),
        data: serde_json::json!({}),
        metadata: serde_json::Map::new(),
        timestamp: start,
    };
    let delivery = Delivery::new(&event, SubscriptionId::new(), start);
    // What a publish that failed after storing leaves behind: stored, never enqueued.
    crate::ports::OutboundStore::publish(&*outbound, &event, &[delivery], None, start)
        .await
        .unwrap();

    let sweep = || {
        let queued = queue.queued_deliveries();
        requeue_stranded(&state, Duration::from_secs(120), move |id| {
            queued.contains(id)
        })
    };
    let young = sweep().await.unwrap();
    *clock.0.lock().unwrap() = start + Duration::from_secs(121);
    let old = sweep().await.unwrap();
    *clock.0.lock().unwrap() = start + Duration::from_secs(200);
    let again = sweep().await.unwrap();

    assert_eq!(
        young, 0,
        "a fresh delivery may still be on its way to the queue"
    );
    assert_eq!(old, 1);
    assert_eq!(
        again, 0,
        "it is queued now: queueing it twice would send it twice"
    );
    assert_eq!(queue.approximate_size().await.unwrap(), 1);
}
