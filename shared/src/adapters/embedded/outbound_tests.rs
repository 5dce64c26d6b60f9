//! The SQLite outbound store's contracts: idempotent publish, paging, counts, rate slots.

use std::sync::Arc;
use std::time::Duration;

use secrecy::ExposeSecret;
use serde_json::json;

use super::*;
use crate::domain::outbound::{
    generate_secret, Attempt, DeliveryStatus, EventPattern, EventType, Filters, SigningSecret,
    TargetUrl,
};

fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_795_400_000 + secs, 0).unwrap()
}

fn store() -> (tempfile::TempDir, Arc<SqliteOutbound>) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteOutbound::open(dir.path().join("outbound.db")).unwrap();
    (dir, Arc::new(store))
}

fn subscription(created: i64) -> Subscription {
    Subscription {
        id: SubscriptionId::new(),
        name: format!("subscriber {created}"),
        url: TargetUrl::parse("https://hooks.example.com/nexus?x=1", false).unwrap(),
        events: vec![EventPattern::parse("build.*").unwrap()],
        filters: Filters {
            project: Some("NEXUS".into()),
            ..Filters::default()
        },
        description: Some("CI notifications".into()),
        rate_limit: Some(60),
        active: true,
        secrets: vec![
            SigningSecret::current(generate_secret(&[7; 32])),
            SigningSecret {
                value: generate_secret(&[8; 32]),
                expires_at: Some(at(86_400)),
            },
        ],
        created_at: at(created),
        updated_at: at(created),
    }
}

fn event(event_type: &str) -> Event {
    Event::new(
        EventId::new(),
        EventType::parse(event_type).unwrap(),
        "jenkins".into(),
        json!({"build": 42}),
        serde_json::Map::new(),
        at(0),
    )
}

/// A delivery whose id sorts by `n`: ULIDs made in one millisecond have no order.
fn delivery(n: u64, event: &Event, subscription: &SubscriptionId) -> Delivery {
    let ulid = ulid::Ulid::from_parts(1_795_400_000_000 + n, 0);
    let mut delivery = Delivery::new(event, subscription.clone(), at(0));
    delivery.id = OutboundDeliveryId::parse(&format!("dlv_{ulid}")).unwrap();
    delivery
}

fn attempt(status_code: u16, latency_ms: u64) -> Attempt {
    Attempt {
        number: 1,
        at: at(1),
        status_code: Some(status_code),
        latency_ms,
        response_body: None,
        response_truncated: false,
        error: None,
    }
}

fn ids(page: &DeliveryPage) -> Vec<OutboundDeliveryId> {
    page.deliveries.iter().map(|d| d.id.clone()).collect()
}

fn query(limit: usize) -> DeliveryQuery {
    DeliveryQuery {
        limit,
        ..DeliveryQuery::default()
    }
}

#[tokio::test]
async fn subscriptions_round_trip_with_their_secrets_oldest_first() {
    let (_dir, store) = store();
    let newer = subscription(10);
    let mut older = subscription(0);
    store.put_subscription(&newer).await.unwrap();
    store.put_subscription(&older).await.unwrap();
    older.active = false;
    store.put_subscription(&older).await.unwrap();

    let listed = store.list_subscriptions().await.unwrap();
    let got = store.get_subscription(&older.id).await.unwrap().unwrap();

    assert_eq!(
        listed.iter().map(|s| &s.id).collect::<Vec<_>>(),
        [&older.id, &newer.id]
    );
    assert!(!got.active);
    assert_eq!(got.url, older.url);
    assert_eq!(got.filters, older.filters);
    assert_eq!(got.events, older.events);
    let secrets = |s: &Subscription| {
        let values = s.secrets.iter().map(|x| x.value.expose_secret().to_owned());
        values
            .zip(s.secrets.iter().map(|x| x.expires_at))
            .collect::<Vec<_>>()
    };
    assert_eq!(secrets(&got), secrets(&older));
    assert!(store.delete_subscription(&older.id).await.unwrap());
    assert!(!store.delete_subscription(&older.id).await.unwrap());
    assert!(store.get_subscription(&older.id).await.unwrap().is_none());
}

#[tokio::test]
async fn a_repeated_idempotency_key_stores_nothing_and_returns_the_first_ids() {
    let (dir, store) = store();
    let subscription = SubscriptionId::new();
    let first = event("build.completed");
    let first_deliveries = [
        delivery(1, &first, &subscription),
        delivery(2, &first, &subscription),
    ];
    let outcome = store
        .publish(&first, &first_deliveries, Some("key-1"), at(0))
        .await
        .unwrap();
    assert_eq!(outcome, PublishOutcome::Stored);

    let again = event("build.completed");
    let repeat = store
        .publish(
            &again,
            &[delivery(3, &again, &subscription)],
            Some("key-1"),
            at(5),
        )
        .await
        .unwrap();

    assert_eq!(
        repeat,
        PublishOutcome::Duplicate {
            event_id: first.id.clone(),
            delivery_ids: first_deliveries.iter().map(|d| d.id.clone()).collect(),
        }
    );
    assert!(store.get_event(&again.id).await.unwrap().is_none());
    assert_eq!(
        store
            .list_deliveries(&query(10))
            .await
            .unwrap()
            .deliveries
            .len(),
        2
    );
    assert_eq!(store.delivery_counts().await.unwrap().events, 1);
    drop(store);
    // Durable: the key and what it stored survive reopening.
    let reopened = SqliteOutbound::open(dir.path().join("outbound.db")).unwrap();
    assert_eq!(
        reopened.get_event(&first.id).await.unwrap().as_deref(),
        Some(&first)
    );
    let stored = reopened
        .get_delivery(&first_deliveries[0].id)
        .await
        .unwrap();
    assert_eq!(stored.as_ref(), Some(&first_deliveries[0]));
    let third = reopened
        .publish(&again, &[], Some("key-1"), at(9))
        .await
        .unwrap();
    assert!(matches!(third, PublishOutcome::Duplicate { .. }));
}

#[tokio::test]
async fn purged_idempotency_keys_no_longer_dedupe() {
    let (_dir, store) = store();
    let first = event("a.b");
    store.publish(&first, &[], Some("k"), at(0)).await.unwrap();

    assert_eq!(store.purge_idempotency_keys(at(1)).await.unwrap(), 1);

    let again = event("a.b");
    let outcome = store.publish(&again, &[], Some("k"), at(2)).await.unwrap();
    assert_eq!(outcome, PublishOutcome::Stored);
}

#[tokio::test]
async fn deliveries_are_listed_newest_first_in_pages_and_filtered() {
    let (_dir, store) = store();
    let (a, b) = (SubscriptionId::new(), SubscriptionId::new());
    let event = event("build.completed");
    let all: Vec<Delivery> = (1..=6)
        .map(|n| delivery(n, &event, if n % 2 == 0 { &a } else { &b }))
        .collect();
    store.publish(&event, &all, None, at(0)).await.unwrap();
    let mut failed = all[3].clone();
    failed.status = DeliveryStatus::Failed;
    store.save_delivery(&failed).await.unwrap();
    let newest_first: Vec<_> = all.iter().rev().map(|d| d.id.clone()).collect();

    let first = store.list_deliveries(&query(4)).await.unwrap();
    let second = store
        .list_deliveries(&DeliveryQuery {
            after: first.deliveries.last().map(|d| d.id.clone()),
            ..query(4)
        })
        .await
        .unwrap();
    assert_eq!(ids(&first), newest_first[..4]);
    assert!(first.more);
    assert_eq!(ids(&second), newest_first[4..]);
    assert!(!second.more);

    let of_a = DeliveryQuery {
        subscription_id: Some(a.clone()),
        ..query(10)
    };
    let listed = store.list_deliveries(&of_a).await.unwrap();
    assert_eq!(
        ids(&listed),
        [all[5].id.clone(), all[3].id.clone(), all[1].id.clone()]
    );
    // Page by page through statuses that interleave (pending, failed, pending).
    let mut paged = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .list_deliveries(&DeliveryQuery {
                after: after.clone(),
                limit: 1,
                ..of_a.clone()
            })
            .await
            .unwrap();
        paged.extend(ids(&page));
        after = page.deliveries.last().map(|d| d.id.clone());
        if !page.more {
            break;
        }
    }
    assert_eq!(paged, ids(&listed));
    let pending_of_a = DeliveryQuery {
        status: Some(DeliveryStatus::Pending),
        ..of_a
    };
    let listed = store.list_deliveries(&pending_of_a).await.unwrap();
    assert_eq!(ids(&listed), [all[5].id.clone(), all[1].id.clone()]);
    let failed_anywhere = DeliveryQuery {
        status: Some(DeliveryStatus::Failed),
        ..query(10)
    };
    let listed = store.list_deliveries(&failed_anywhere).await.unwrap();
    assert_eq!(listed.deliveries, [failed]);
    assert!(!listed.more);
}

#[tokio::test]
async fn counts_follow_every_status_change() {
    let (_dir, store) = store();
    let sub = SubscriptionId::new();
    let (build, deploy) = (event("build.completed"), event("deploy.started"));
    let builds: Vec<_> = (1..=3).map(|n| delivery(n, &build, &sub)).collect();
    store.publish(&build, &builds, None, at(0)).await.unwrap();
    store
        .publish(&deploy, &[delivery(4, &deploy, &sub)], None, at(0))
        .await
        .unwrap();

    let mut succeeded = builds[0].clone();
    succeeded.attempts.push(attempt(500, 900));
    succeeded.attempts.push(attempt(200, 120));
    succeeded.status = DeliveryStatus::Success;
    store.save_delivery(&succeeded).await.unwrap();
    // Saving again (a no-op update) must not count twice.
    store.save_delivery(&succeeded).await.unwrap();
    let mut failed = builds[1].clone();
    failed.status = DeliveryStatus::Sending;
    store.save_delivery(&failed).await.unwrap();
    failed.status = DeliveryStatus::Failed;
    store.save_delivery(&failed).await.unwrap();
    let mut retrying = builds[2].clone();
    retrying.status = DeliveryStatus::Retrying;
    store.save_delivery(&retrying).await.unwrap();

    let counts = store.delivery_counts().await.unwrap();
    assert_eq!(
        counts,
        DeliveryCounts {
            events: 2,
            succeeded: 1,
            failed: 1,
            pending: 2,
            success_latency_ms_total: 120,
            events_by_type: [("build.completed".into(), 1), ("deploy.started".into(), 1)].into(),
        }
    );
}

#[tokio::test]
async fn concurrent_callers_each_take_their_own_slot_one_interval_apart() {
    let (_dir, store) = store();
    let limited = SubscriptionId::new();
    let asks: Vec<_> = (0..10)
        .map(|_| {
            let (store, id) = (store.clone(), limited.clone());
            tokio::spawn(async move {
                store
                    .reserve_rate_slot(&id, RateLane::Send, 30, at(0))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut waits = Vec::new();
    for ask in asks {
        waits.push(ask.await.unwrap().as_secs());
    }
    waits.sort_unstable();

    assert_eq!(waits, [0, 2, 4, 6, 8, 10, 12, 14, 16, 18]);
    let other = SubscriptionId::new();
    let free = store
        .reserve_rate_slot(&other, RateLane::Send, 30, at(0))
        .await
        .unwrap();
    assert_eq!(free, Duration::ZERO, "each subscription has its own slots");
}

#[tokio::test]
async fn slots_are_exact_to_the_nanosecond_and_idle_time_does_not_accumulate() {
    let (_dir, store) = store();
    let id = SubscriptionId::new();
    let interval = Duration::from_secs(60) / 7;
    for n in 0..4 {
        assert_eq!(
            store
                .reserve_rate_slot(&id, RateLane::Wake, 7, at(0))
                .await
                .unwrap(),
            interval * n
        );
    }
    assert_eq!(
        store
            .reserve_rate_slot(&id, RateLane::Send, 7, at(0))
            .await
            .unwrap(),
        Duration::ZERO,
        "the send lane keeps its own slots"
    );
    // Long after the last slot: the next one is now, and only one.
    assert_eq!(
        store
            .reserve_rate_slot(&id, RateLane::Wake, 7, at(3_600))
            .await
            .unwrap(),
        Duration::ZERO
    );
    assert_eq!(
        store
            .reserve_rate_slot(&id, RateLane::Wake, 7, at(3_600))
            .await
            .unwrap(),
        interval
    );
}

#[tokio::test]
async fn a_batch_publish_stores_each_event_once_and_recognises_used_keys() {
    let (_dir, store) = store();
    let sub = SubscriptionId::new();
    let first = event("build.completed");
    store
        .publish(&first, &[delivery(1, &first, &sub)], Some("k1"), at(0))
        .await
        .unwrap();
    let publication = |event: Event, n: u64, key: &str| Publication {
        deliveries: vec![delivery(n, &event, &sub)],
        event,
        idempotency_key: Some(key.to_owned()),
    };
    let batch = [
        publication(event("build.completed"), 2, "k0"),
        publication(event("build.completed"), 3, "k1"),
        publication(event("deploy.started"), 4, "k2"),
    ];

    let outcomes = store.publish_all(&batch, at(1)).await.unwrap();

    assert_eq!(outcomes[0], PublishOutcome::Stored);
    assert!(
        matches!(&outcomes[1], PublishOutcome::Duplicate { event_id, .. } if *event_id == first.id)
    );
    assert_eq!(outcomes[2], PublishOutcome::Stored);
    assert!(store.get_event(&batch[0].event.id).await.unwrap().is_some());
    assert!(store.get_event(&batch[1].event.id).await.unwrap().is_none());
    let counts = store.delivery_counts().await.unwrap();
    assert_eq!((counts.events, counts.pending), (3, 3));
}

#[tokio::test]
async fn one_worker_at_a_time_holds_a_delivery_and_a_copy_read_before_a_save_cannot_claim_it() {
    let (_dir, store) = store();
    let e = event("build.completed");
    let read = delivery(1, &e, &SubscriptionId::new());
    store
        .publish(&e, std::slice::from_ref(&read), None, at(0))
        .await
        .unwrap();

    assert!(store.claim_delivery(&read, at(60), at(1)).await.unwrap());
    // A duplicate message's worker, while the first still holds it.
    assert!(!store.claim_delivery(&read, at(60), at(2)).await.unwrap());

    // The holder records its attempt, which releases the claim for the copy it saved.
    let mut saved = read.clone();
    saved.attempts.push(attempt(500, 10));
    saved.status = DeliveryStatus::Retrying;
    saved.updated_at = at(3);
    store.save_delivery(&saved).await.unwrap();
    assert!(!store.claim_delivery(&read, at(60), at(4)).await.unwrap());
    assert!(store.claim_delivery(&saved, at(64), at(4)).await.unwrap());

    // A holder that never saves (its process stopped mid-attempt) holds it until its time.
    assert!(!store.claim_delivery(&saved, at(120), at(63)).await.unwrap());
    assert!(store.claim_delivery(&saved, at(120), at(65)).await.unwrap());
}

#[tokio::test]
async fn deliveries_stored_before_pending_left_the_subscription_index_are_listed_after_the_upgrade()
{
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("outbound.db");
    let e = event("build.completed");
    let sub = SubscriptionId::new();
    let waiting = delivery(1, &e, &sub);
    let mut done = delivery(2, &e, &sub);
    done.attempts.push(attempt(200, 5));
    done.status = DeliveryStatus::Success;
    {
        // A database as the version before the upgrade left it.
        let before = Database::open(&path, &MIGRATIONS[..3], "test-v3").unwrap();
        let rows = [
            DeliveryRow::new(&waiting).unwrap(),
            DeliveryRow::new(&done).unwrap(),
        ];
        before
            .write(move |tx| {
                for row in &rows {
                    tx.execute(
                        "INSERT INTO deliveries (id, subscription_id, event_id, status, doc)
                         VALUES (?1, ?2, ?3, ?4, ?5)",
                        params![
                            row.id,
                            row.subscription_id,
                            row.event_id,
                            row.status,
                            row.doc
                        ],
                    )
                    .map_err(db_error)?;
                }
                Ok(())
            })
            .await
            .unwrap();
    }
    let store = SqliteOutbound::open(&path).unwrap();
    let of_sub = |status| DeliveryQuery {
        subscription_id: Some(sub.clone()),
        status,
        ..query(10)
    };

    let all = store.list_deliveries(&of_sub(None)).await.unwrap();
    assert_eq!(ids(&all), [done.id.clone(), waiting.id.clone()]);
    let pending = store
        .list_deliveries(&of_sub(Some(DeliveryStatus::Pending)))
        .await
        .unwrap();
    assert_eq!(ids(&pending), [waiting.id.clone()]);
    let succeeded = store
        .list_deliveries(&of_sub(Some(DeliveryStatus::Success)))
        .await
        .unwrap();
    assert_eq!(ids(&succeeded), [done.id.clone()]);
}
