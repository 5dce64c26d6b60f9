//! `DynamoOutbound` on moto: what `OutboundStore` promises, on DynamoDB.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use futures::future::join_all;
use nexus_shared::domain::outbound::{
    Attempt, Delivery, DeliveryStatus, OutboundDeliveryId, SigningSecret, SubscriptionId,
};
use nexus_shared::ports::outbound::{DeliveryQuery, OutboundStore, PublishOutcome};
use secrecy::ExposeSecret;

use super::{deliveries, dynamo_outbound, event, moto, subscription};

fn settled(mut delivery: Delivery, status: DeliveryStatus, latency_ms: u64) -> Delivery {
    delivery.attempts.push(Attempt {
        number: delivery.attempts.len() as u32 + 1,
        at: Utc::now(),
        status_code: Some(if status == DeliveryStatus::Success {
            200
        } else {
            500
        }),
        latency_ms,
        response_body: Some("ok".into()),
        response_truncated: false,
        error: None,
    });
    delivery.status = status;
    delivery
}

fn ids(deliveries: &[Delivery]) -> Vec<OutboundDeliveryId> {
    deliveries.iter().map(|d| d.id.clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_round_trip_with_their_secrets_and_list_oldest_first() {
    let Some((sdk, config)) = moto().await else {
        return;
    };
    let store = dynamo_outbound(&sdk, &config);
    let now = Utc::now();
    let mut first = subscription("https://example.com/hooks?x=1", "build.*");
    first.filters.project = Some("NEXUS".into());
    first.filters.severities = vec!["critical".into(), "high".into()];
    first.description = Some("CI alerts".into());
    first.rate_limit = Some(120);
    first.rotate(
        "whsec_bmV3LXNlY3JldC1vZi10d2VudHktZm91cg=="
            .to_owned()
            .into(),
        now,
        Duration::from_secs(60),
    );
    let second = subscription("http://127.0.0.1:9/x", "*");
    store.put_subscription(&first).await.unwrap();
    store.put_subscription(&second).await.unwrap();

    let stored = store
        .get_subscription(&first.id)
        .await
        .unwrap()
        .expect("stored");
    assert_eq!(stored.url, first.url);
    assert_eq!(stored.events, first.events);
    assert_eq!(stored.filters, first.filters);
    assert_eq!(
        (stored.description, stored.rate_limit),
        (first.description.clone(), Some(120))
    );
    assert_eq!(
        (stored.created_at, stored.updated_at),
        (first.created_at, first.updated_at)
    );
    let secrets = |s: &[SigningSecret]| -> Vec<(String, Option<_>)> {
        s.iter()
            .map(|s| (s.value.expose_secret().to_owned(), s.expires_at))
            .collect()
    };
    assert_eq!(secrets(&stored.secrets), secrets(&first.secrets));
    assert_eq!(stored.secrets.len(), 2);

    let listed: Vec<SubscriptionId> = store
        .list_subscriptions()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(listed, [first.id.clone(), second.id.clone()]);
    assert!(store.delete_subscription(&first.id).await.unwrap());
    assert!(!store.delete_subscription(&first.id).await.unwrap());
    assert!(store.get_subscription(&first.id).await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_idempotency_key_returns_the_first_publish_and_stores_nothing() {
    let Some((sdk, config)) = moto().await else {
        return;
    };
    let store = dynamo_outbound(&sdk, &config);
    let (a, b) = (
        subscription("https://a.example", "*"),
        subscription("https://b.example", "*"),
    );
    let now = Utc::now();
    let first = event("build.completed", now);
    let first_deliveries = deliveries(&first, &[&a, &b]);
    let outcome = store
        .publish(&first, &first_deliveries, Some("key-1"), now)
        .await
        .unwrap();
    assert_eq!(outcome, PublishOutcome::Stored);
    assert_eq!(
        store.get_event(&first.id).await.unwrap(),
        Some(first.clone())
    );
    assert_eq!(
        store
            .get_delivery(&first_deliveries[1].id)
            .await
            .unwrap()
            .as_ref(),
        Some(&first_deliveries[1])
    );

    let again = event("build.completed", now);
    let outcome = store
        .publish(&again, &deliveries(&again, &[&a]), Some("key-1"), now)
        .await
        .unwrap();
    assert_eq!(
        outcome,
        PublishOutcome::Duplicate {
            event_id: first.id.clone(),
            delivery_ids: ids(&first_deliveries)
        }
    );
    assert!(store.get_event(&again.id).await.unwrap().is_none());

    // Once the key has expired (TTL deletes late, or on moto never) it is free again.
    let later = now + TimeDelta::hours(2);
    let third = event("build.completed", later);
    let outcome = store
        .publish(&third, &[], Some("key-1"), later)
        .await
        .unwrap();
    assert_eq!(outcome, PublishOutcome::Stored);

    let counts = store.delivery_counts().await.unwrap();
    assert_eq!((counts.events, counts.pending), (2, 2));
    assert_eq!(
        counts.events_by_type,
        BTreeMap::from([("build.completed".to_owned(), 2)])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_of_more_than_one_transaction_stores_every_delivery() {
    let Some((sdk, config)) = moto().await else {
        return;
    };
    let store = dynamo_outbound(&sdk, &config);
    let subscriptions: Vec<_> = (0..150)
        .map(|_| subscription("https://x.example", "*"))
        .collect();
    let now = Utc::now();
    let big = event("release.completed", now);
    let all = deliveries(&big, &subscriptions.iter().collect::<Vec<_>>());
    let outcome = store.publish(&big, &all, Some("big"), now).await.unwrap();
    assert_eq!(outcome, PublishOutcome::Stored);

    let mut listed = Vec::new();
    let mut after = None;
    loop {
        let query = DeliveryQuery {
            after: after.clone(),
            limit: 64,
            ..DeliveryQuery::default()
        };
        let page = store.list_deliveries(&query).await.unwrap();
        listed.extend(ids(&page.deliveries));
        after = listed.last().cloned();
        if !page.more {
            break;
        }
    }
    let mut expected = ids(&all);
    expected.sort_by(|a, b| b.cmp(a));
    assert_eq!(
        listed, expected,
        "every delivery, newest first, across pages"
    );
    assert_eq!(store.delivery_counts().await.unwrap().pending, 150);
    let repeat = store
        .publish(&event("release.completed", now), &[], Some("big"), now)
        .await;
    assert!(
        matches!(repeat.unwrap(), PublishOutcome::Duplicate { delivery_ids, .. } if delivery_ids.len() == 150)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_list_newest_first_by_subscription_and_status_with_cursors() {
    let Some((sdk, config)) = moto().await else {
        return;
    };
    let store = dynamo_outbound(&sdk, &config);
    let (a, b) = (
        subscription("https://a.example", "*"),
        subscription("https://b.example", "*"),
    );
    let mut all = Vec::new();
    for _ in 0..3 {
        let e = event("build.failed", Utc::now());
        let fanned = deliveries(&e, &[&a, &b]);
        store.publish(&e, &fanned, None, Utc::now()).await.unwrap();
        all.extend(fanned);
    }
    let a_success = settled(all[0].clone(), DeliveryStatus::Success, 12);
    let b_failed = settled(all[3].clone(), DeliveryStatus::Failed, 30);
    store.save_delivery(&a_success).await.unwrap();
    store.save_delivery(&b_failed).await.unwrap();

    let newest_first = |mut list: Vec<OutboundDeliveryId>| {
        list.sort_by(|x, y| y.cmp(x));
        list
    };
    let list = |query: DeliveryQuery| {
        let store = &store;
        async move { store.list_deliveries(&query).await.unwrap() }
    };
    let of = |sub: &SubscriptionId| {
        ids(&all)
            .into_iter()
            .zip(&all)
            .filter(|(_, d)| &d.subscription_id == sub)
            .map(|(id, _)| id)
            .collect::<Vec<_>>()
    };

    let everything = list(DeliveryQuery {
        limit: 100,
        ..Default::default()
    })
    .await;
    assert_eq!(ids(&everything.deliveries), newest_first(ids(&all)));
    assert!(!everything.more);

    let page1 = list(DeliveryQuery {
        limit: 4,
        ..Default::default()
    })
    .await;
    assert!(page1.more);
    let after = page1.deliveries.last().map(|d| d.id.clone());
    let page2 = list(DeliveryQuery {
        limit: 4,
        after,
        ..Default::default()
    })
    .await;
    assert!(!page2.more);
    assert_eq!(
        [ids(&page1.deliveries), ids(&page2.deliveries)].concat(),
        newest_first(ids(&all))
    );

    let by_a = list(DeliveryQuery {
        subscription_id: Some(a.id.clone()),
        limit: 10,
        ..Default::default()
    })
    .await;
    assert_eq!(ids(&by_a.deliveries), newest_first(of(&a.id)));
    let succeeded = list(DeliveryQuery {
        status: Some(DeliveryStatus::Success),
        limit: 10,
        ..Default::default()
    })
    .await;
    assert_eq!(succeeded.deliveries, [a_success.clone()]);
    let b_pending = DeliveryQuery {
        subscription_id: Some(b.id.clone()),
        status: Some(DeliveryStatus::Pending),
        limit: 10,
        ..Default::default()
    };
    let mut expected: Vec<_> = of(&b.id)
        .into_iter()
        .filter(|id| *id != b_failed.id)
        .collect();
    expected = newest_first(expected);
    assert_eq!(ids(&list(b_pending).await.deliveries), expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_follow_each_status_change_exactly_once_even_when_writers_race() {
    let Some((sdk, config)) = moto().await else {
        return;
    };
    let store = dynamo_outbound(&sdk, &config);
    let s = subscription("https://a.example", "*");
    let e = event("deploy.done", Utc::now());
    let fanned = deliveries(&e, &[&s, &s, &s]);
    store.publish(&e, &fanned, None, Utc::now()).await.unwrap();

    // The same success saved five times at once counts once.
    let success = settled(fanned[0].clone(), DeliveryStatus::Success, 40);
    let saves = join_all((0..5).map(|_| store.save_delivery(&success))).await;
    assert!(saves.iter().all(Result::is_ok), "{saves:?}");
    let retrying = settled(fanned[1].clone(), DeliveryStatus::Retrying, 5);
    store.save_delivery(&retrying).await.unwrap();
    store.save_delivery(&retrying).await.unwrap();
    let counts = store.delivery_counts().await.unwrap();
    assert_eq!((counts.succeeded, counts.failed, counts.pending), (1, 0, 2));
    assert_eq!(counts.success_latency_ms_total, 40);

    store
        .save_delivery(&settled(retrying, DeliveryStatus::Failed, 5))
        .await
        .unwrap();
    let counts = store.delivery_counts().await.unwrap();
    assert_eq!((counts.succeeded, counts.failed, counts.pending), (1, 1, 1));
    assert_eq!(counts.events, 1);
    assert_eq!(
        store.get_delivery(&success.id).await.unwrap(),
        Some(success)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_slot_is_taken_only_when_free_and_by_one_racer() {
    let Some((sdk, config)) = moto().await else {
        return;
    };
    let store = dynamo_outbound(&sdk, &config);
    let id = SubscriptionId::new();
    let now = Utc::now();
    assert_eq!(
        store.reserve_rate_slot(&id, 60, now).await.unwrap(),
        Duration::ZERO
    );
    // Busy: the wait is reported and nothing is reserved, so asking again gives the same.
    for _ in 0..2 {
        assert_eq!(
            store.reserve_rate_slot(&id, 60, now).await.unwrap(),
            Duration::from_secs(1)
        );
    }
    let later = now + TimeDelta::milliseconds(400);
    assert_eq!(
        store.reserve_rate_slot(&id, 60, later).await.unwrap(),
        Duration::from_millis(600)
    );
    let due = now + TimeDelta::seconds(1);
    assert_eq!(
        store.reserve_rate_slot(&id, 60, due).await.unwrap(),
        Duration::ZERO
    );

    let fresh = SubscriptionId::new();
    let racers = join_all((0..6).map(|_| store.reserve_rate_slot(&fresh, 30, now))).await;
    let waits: Vec<Duration> = racers.into_iter().map(Result::unwrap).collect();
    assert_eq!(waits.iter().filter(|w| w.is_zero()).count(), 1, "{waits:?}");
    assert!(
        waits
            .iter()
            .all(|w| w.is_zero() || *w == Duration::from_secs(2)),
        "{waits:?}"
    );
}
