//! `DynamoOutbound` on moto: what `OutboundStore` promises, on DynamoDB.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;

use chrono::{TimeDelta, Utc};
use futures::future::join_all;
use nexus_shared::adapters::aws::DynamoOutbound;
use nexus_shared::domain::outbound::{
    Attempt, Delivery, DeliveryStatus, OutboundDeliveryId, SigningSecret, SubscriptionId,
};
use nexus_shared::ports::outbound::{
    DeliveryQuery, OutboundStore, Publication, PublishOutcome, RateLane,
};
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
        (stored.description.clone(), stored.rate_limit),
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
        .iter()
        .map(|s| s.id.clone())
        .collect();
    // Oldest first: by id, a ULID of the creation time (random within one millisecond).
    let mut expected = [first.id.clone(), second.id.clone()];
    expected.sort();
    assert_eq!(listed, expected);
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
        store.get_event(&first.id).await.unwrap().as_deref(),
        Some(&first)
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

/// Counts the `TransactWriteItems` requests a DynamoDB client sends.
#[derive(Debug, Default, Clone)]
struct Transactions(Arc<AtomicUsize>);

impl Transactions {
    fn sent(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

impl Intercept for Transactions {
    fn name(&self) -> &'static str {
        "count-transactions"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let target = context.request().headers().get("x-amz-target");
        if target.is_some_and(|t| t.ends_with(".TransactWriteItems")) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_small_fan_outs_shares_transactions_and_its_repeat_finds_each_first_publish() {
    let Some((sdk, config)) = moto().await else {
        return;
    };
    let transactions = Transactions::default();
    let client = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&sdk)
            .interceptor(transactions.clone())
            .build(),
    );
    let store = DynamoOutbound::new(
        client,
        config.outbound.table.clone(),
        Duration::from_secs(3600),
    );
    let (a, b) = (
        subscription("https://a.example", "*"),
        subscription("https://b.example", "*"),
    );
    let now = Utc::now();
    let batch = |count: usize| -> Vec<Publication> {
        (0..count)
            .map(|i| {
                let event = event(
                    if i % 2 == 0 {
                        "build.completed"
                    } else {
                        "deploy.done"
                    },
                    now,
                );
                Publication {
                    deliveries: deliveries(&event, &[&a, &b]),
                    event,
                    idempotency_key: Some(format!("batch:{i}")),
                }
            })
            .collect()
    };

    // 60 publications of 4 items each (key, event, two deliveries): 24 fit beside the
    // counters in one transaction of 100, so three transactions, not sixty.
    let first = batch(60);
    let outcomes = store.publish_all(&first, now).await.unwrap();
    assert_eq!(outcomes, vec![PublishOutcome::Stored; 60]);
    assert_eq!(transactions.sent(), 3);
    for publication in &first {
        let stored = store.get_event(&publication.event.id).await.unwrap();
        assert_eq!(stored.as_deref(), Some(&publication.event));
        for delivery in &publication.deliveries {
            let stored = store.get_delivery(&delivery.id).await.unwrap();
            assert_eq!(stored.as_ref(), Some(delivery));
        }
    }
    let counts = store.delivery_counts().await.unwrap();
    assert_eq!((counts.events, counts.pending), (60, 120));
    assert_eq!(
        counts.events_by_type,
        BTreeMap::from([
            ("build.completed".to_owned(), 30),
            ("deploy.done".to_owned(), 30)
        ])
    );

    // The batch retried with five more events: the sixty are answered with what was
    // stored first, the five are stored, and nothing is stored twice.
    let again = batch(65);
    let outcomes = store.publish_all(&again, now).await.unwrap();
    for (i, outcome) in outcomes.iter().enumerate() {
        match first.get(i) {
            Some(original) => assert_eq!(
                *outcome,
                PublishOutcome::Duplicate {
                    event_id: original.event.id.clone(),
                    delivery_ids: ids(&original.deliveries),
                },
                "publication {i}"
            ),
            None => assert_eq!(*outcome, PublishOutcome::Stored, "publication {i}"),
        }
    }
    for publication in &again[..60] {
        assert!(store
            .get_event(&publication.event.id)
            .await
            .unwrap()
            .is_none());
    }
    let counts = store.delivery_counts().await.unwrap();
    assert_eq!((counts.events, counts.pending), (65, 130));
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

    let newest_first = |keep: &dyn Fn(&Delivery) -> bool| {
        let mut wanted: Vec<_> = all
            .iter()
            .filter(|d| keep(d))
            .map(|d| d.id.clone())
            .collect();
        wanted.sort_by(|x, y| y.cmp(x));
        wanted
    };
    let list = |subscription_id: Option<&SubscriptionId>, status, after, limit| {
        let query = DeliveryQuery {
            subscription_id: subscription_id.cloned(),
            status,
            after,
            limit,
        };
        let store = &store;
        async move { store.list_deliveries(&query).await.unwrap() }
    };

    let everything = list(None, None, None, 100).await;
    assert_eq!(ids(&everything.deliveries), newest_first(&|_| true));
    assert!(!everything.more);
    let page1 = list(None, None, None, 4).await;
    assert!(page1.more);
    let page2 = list(None, None, page1.deliveries.last().map(|d| d.id.clone()), 4).await;
    assert!(!page2.more);
    let both = [ids(&page1.deliveries), ids(&page2.deliveries)].concat();
    assert_eq!(both, newest_first(&|_| true));

    let by_a = list(Some(&a.id), None, None, 10).await;
    assert_eq!(
        ids(&by_a.deliveries),
        newest_first(&|d| d.subscription_id == a.id)
    );
    let succeeded = list(None, Some(DeliveryStatus::Success), None, 10).await;
    assert_eq!(succeeded.deliveries, std::slice::from_ref(&a_success));
    let b_pending = list(Some(&b.id), Some(DeliveryStatus::Pending), None, 10).await;
    assert_eq!(
        ids(&b_pending.deliveries),
        newest_first(&|d| d.subscription_id == b.id && d.id != b_failed.id)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_follow_each_status_change_exactly_once() {
    let Some((sdk, config)) = moto().await else {
        return;
    };
    let store = dynamo_outbound(&sdk, &config);
    let s = subscription("https://a.example", "*");
    let e = event("deploy.done", Utc::now());
    let fanned = deliveries(&e, &[&s, &s, &s]);
    store.publish(&e, &fanned, None, Utc::now()).await.unwrap();

    // The same success saved five times counts once. (Saved one after another: moto does
    // not isolate concurrent transactions, so a racing version of this check is flaky
    // there; on DynamoDB the conditional transaction is what keeps racing writers apart.)
    let success = settled(fanned[0].clone(), DeliveryStatus::Success, 40);
    for _ in 0..5 {
        store.save_delivery(&success).await.unwrap();
    }
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
async fn every_caller_takes_its_own_rate_slot_even_racing() {
    let Some((sdk, config)) = moto().await else {
        return;
    };
    let store = dynamo_outbound(&sdk, &config);
    let id = SubscriptionId::new();
    let now = Utc::now();
    for n in 0..3 {
        assert_eq!(
            store
                .reserve_rate_slot(&id, RateLane::Wake, 60, now)
                .await
                .unwrap(),
            Duration::from_secs(n)
        );
    }
    let later = now + TimeDelta::milliseconds(400);
    assert_eq!(
        store
            .reserve_rate_slot(&id, RateLane::Wake, 60, later)
            .await
            .unwrap(),
        Duration::from_millis(2_600)
    );
    assert_eq!(
        store
            .reserve_rate_slot(&id, RateLane::Send, 60, now)
            .await
            .unwrap(),
        Duration::ZERO,
        "the send lane keeps its own slots"
    );

    let fresh = SubscriptionId::new();
    let racers =
        join_all((0..6).map(|_| store.reserve_rate_slot(&fresh, RateLane::Send, 30, now))).await;
    let mut waits: Vec<u64> = racers
        .into_iter()
        .map(|wait| wait.unwrap().as_secs())
        .collect();
    waits.sort_unstable();
    assert_eq!(waits, [0, 2, 4, 6, 8, 10]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_worker_at_a_time_holds_a_delivery_and_a_copy_read_before_a_save_cannot_claim_it() {
    let Some((sdk, config)) = moto().await else {
        return;
    };
    let store = dynamo_outbound(&sdk, &config);
    let s = subscription("https://a.example", "*");
    let e = event("deploy.done", Utc::now());
    let read = deliveries(&e, &[&s]).remove(0);
    store
        .publish(&e, std::slice::from_ref(&read), None, Utc::now())
        .await
        .unwrap();
    let now = Utc::now();
    let secs = |n| now + TimeDelta::seconds(n);

    // One after another: moto does not isolate concurrent conditional writes (see above).
    assert!(store.claim_delivery(&read, secs(60), now).await.unwrap());
    // A duplicate message's worker, while the first still holds it.
    assert!(!store
        .claim_delivery(&read, secs(60), secs(2))
        .await
        .unwrap());

    // The holder records its attempt, which releases the claim for the copy it saved.
    let mut saved = settled(read.clone(), DeliveryStatus::Retrying, 10);
    saved.updated_at = secs(3);
    store.save_delivery(&saved).await.unwrap();
    assert!(!store
        .claim_delivery(&read, secs(60), secs(4))
        .await
        .unwrap());
    assert!(store
        .claim_delivery(&saved, secs(64), secs(4))
        .await
        .unwrap());

    // A holder that never saves (its Lambda stopped mid-attempt) holds it until its time.
    assert!(!store
        .claim_delivery(&saved, secs(120), secs(63))
        .await
        .unwrap());
    assert!(store
        .claim_delivery(&saved, secs(120), secs(65))
        .await
        .unwrap());
    // A stale copy stays refused, however late.
    assert!(!store
        .claim_delivery(&read, secs(900), secs(800))
        .await
        .unwrap());
}
