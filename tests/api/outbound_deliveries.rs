//! The delivery log and what drives it: rate limits, manual retries, history filters and
//! cursors, pending retries and statistics.

use std::collections::BTreeSet;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{behaviour, spawn_app_with, Backend, TestApp};
use crate::outbound_support::{eventually, outbound_options};
use crate::receiver::{Answer, Receiver};

behaviour!(
    a_rate_limited_subscription_spaces_deliveries_and_drops_none,
    each_delivery_behind_a_rate_limit_waits_for_a_slot_of_its_own,
    a_manual_retry_sends_once_and_does_not_reschedule_itself,
    deliveries_are_listed_by_subscription_and_status_in_cursor_pages,
    stats_count_subscriptions_events_and_outcomes,
);

fn ids(page: &Value) -> Vec<String> {
    page["deliveries"]
        .as_array()
        .expect("deliveries")
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn a_rate_limited_subscription_spaces_deliveries_and_drops_none(backend: Backend) {
    let app = spawn_app_with(backend, outbound_options()).await;
    let receiver = Receiver::start().await;
    // 300 per minute: one request every 200 ms. Enough events that the later ones wait
    // longer than the SQS queue's delay resolution (2 s), so they are requeued for their
    // slots rather than held in the process.
    const EVENTS: u64 = 15;
    let interval = Duration::from_millis(200);
    app.create_subscription(json!({"name": "limited", "url": receiver.url(),
                                   "events": ["build.*"], "rate_limit": 300}))
        .await;
    let events: Vec<Value> = (0..EVENTS)
        .map(|n| json!({"type": "build.completed", "source": "tests", "data": {"n": n}}))
        .collect();
    let published = app
        .post("/api/v1/events/batch", json!({"events": events}))
        .await;
    assert_eq!(published.status, StatusCode::ACCEPTED, "{}", published.body);

    let requests = receiver.wait_for(EVENTS as usize).await;
    let arrived: BTreeSet<u64> = requests
        .iter()
        .map(|r| r.json()["data"]["n"].as_u64().unwrap())
        .collect();
    assert_eq!(
        arrived,
        (0..EVENTS).collect(),
        "every event arrives, none twice"
    );
    // Send slots are 200 ms apart. An arrival lags its slot by the work between the slot
    // and the request reaching the receiver, which varies on a busy machine, so two
    // arrivals may come closer than their slots; without the limit they would come within
    // a few milliseconds of each other.
    let slack = interval / 2;
    let offsets: Vec<u128> = requests
        .iter()
        .map(|r| (r.at - requests[0].at).as_millis())
        .collect();
    for pair in requests.windows(2) {
        let gap = pair[1].at - pair[0].at;
        assert!(
            gap + slack >= interval,
            "arrivals {gap:?} apart: {offsets:?} ms"
        );
    }
    let span = requests[requests.len() - 1].at - requests[0].at;
    assert!(
        span + slack >= interval * (EVENTS as u32 - 1),
        "{EVENTS} arrivals in {span:?}"
    );
    for event in published.body["events"].as_array().unwrap() {
        let id = event["deliveries"][0]["id"].as_str().unwrap();
        let delivery = app.wait_until_final(id).await;
        assert_eq!(delivery["status"], "success");
        assert_eq!(
            delivery["attempt_count"], 1,
            "waiting for a slot is not an attempt"
        );
    }
}

/// A backlog behind a slow limit must not be woken for every freed slot (each wake counts
/// toward the queue's redrive limit): each waiting delivery takes its own slot, shows it as
/// its next attempt, and sleeps until then.
async fn each_delivery_behind_a_rate_limit_waits_for_a_slot_of_its_own(backend: Backend) {
    let app = spawn_app_with(backend, outbound_options()).await;
    let receiver = Receiver::start().await;
    app.create_subscription(json!({"name": "slow", "url": receiver.url(),
                                   "events": ["build.*"], "rate_limit": 1}))
        .await;
    let ids: Vec<String> = {
        let mut ids = Vec::new();
        for n in 0..3 {
            ids.push(app.publish_one("build.completed", json!({"n": n})).await);
        }
        ids
    };

    let mut slots = Vec::new();
    for id in &ids[1..] {
        let waiting = app
            .wait_for_delivery(id, |d| {
                d["status"] == "pending"
                    && next_attempt_at(d) > created_at(d) + Duration::from_secs(50)
            })
            .await;
        assert_eq!(waiting["attempt_count"], 0, "{waiting}");
        slots.push(next_attempt_at(&waiting));
    }
    slots.sort();
    assert_eq!(
        slots[1] - slots[0],
        chrono::TimeDelta::seconds(60),
        "one slot each, a minute apart"
    );
    assert_eq!(receiver.wait_for(1).await.len(), 1);
    let sent = app.wait_until_final(&ids[0]).await;
    assert_eq!(sent["status"], "success");
    assert_eq!(
        receiver.requests().len(),
        1,
        "the others wait for their slots"
    );
}

fn next_attempt_at(delivery: &Value) -> chrono::DateTime<chrono::Utc> {
    time(&delivery["next_attempt_at"])
}

fn created_at(delivery: &Value) -> chrono::DateTime<chrono::Utc> {
    time(&delivery["created_at"])
}

fn time(value: &Value) -> chrono::DateTime<chrono::Utc> {
    value
        .as_str()
        .and_then(|text| text.parse().ok())
        .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC)
}

async fn a_manual_retry_sends_once_and_does_not_reschedule_itself(backend: Backend) {
    let app = spawn_app_with(backend, outbound_options()).await;
    let receiver = Receiver::scripted((0..4).map(|_| Answer::status(500))).await;
    app.subscribe(&receiver.url(), &["build.*"]).await;
    let id = app.publish_one("build.failed", json!({})).await;
    let failed = app.wait_until_final(&id).await;
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["attempt_count"], 3);
    let retry = format!("/api/v1/deliveries/{id}/retry");

    let accepted = app.post(&retry, json!({})).await;
    assert_eq!(accepted.status, StatusCode::OK, "{}", accepted.body);
    assert_eq!(accepted.body["manual"], true);
    let again = app
        .wait_for_delivery(&id, |d| d["attempt_count"] == 4 && d["status"] != "pending")
        .await;
    assert_eq!(again["status"], "failed", "{again}");
    assert_eq!(again["next_attempt_at"], Value::Null, "not rescheduled");
    assert_eq!(receiver.wait_for(4).await.len(), 4);
    let pending = app.get("/api/v1/deliveries/pending").await;
    assert_eq!(pending.body["count"], 0, "{}", pending.body);
    let stats = app.get("/api/v1/stats").await;
    assert_eq!(stats.body["pending_retries"], 0, "{}", stats.body);

    // A second manual retry, now answered 200: exactly one more request.
    app.post(&retry, json!({})).await;
    let delivered = app
        .wait_for_delivery(&id, |d| d["status"] == "success")
        .await;
    assert_eq!(delivered["attempt_count"], 5);
    assert_eq!(receiver.requests().len(), 5);

    // A delivery still waiting for its first attempt (here for a rate-limit slot a
    // minute away) is not retried by hand.
    let slow = app
        .create_subscription(json!({"name": "slow", "url": receiver.url_for("slow"),
                                   "events": ["ticket.*"], "rate_limit": 1}))
        .await;
    let first = app.publish_one("ticket.created", json!({})).await;
    app.wait_until_final(&first).await;
    let waiting = app.publish_one("ticket.updated", json!({})).await;
    let conflict = app
        .post(&format!("/api/v1/deliveries/{waiting}/retry"), json!({}))
        .await;
    conflict.error(StatusCode::CONFLICT, "conflict");
    assert_eq!(app.delivery(&waiting).await["status"], "pending");
    assert_eq!(receiver.requests_for("slow").len(), 1, "{}", slow.id);

    let unknown = format!("dlv_{}", ulid::Ulid::new().to_string().to_lowercase());
    app.post(&format!("/api/v1/deliveries/{unknown}/retry"), json!({}))
        .await
        .error(StatusCode::NOT_FOUND, "not_found");
}

/// Three events to two subscriptions: `ok` answers 200; `down` answers 500 and retries
/// only after a minute, so its deliveries stay `retrying` (pending) for the whole test.
async fn deliveries_are_listed_by_subscription_and_status_in_cursor_pages(backend: Backend) {
    let options = outbound_options()
        .outbound("WEBHOOK_INITIAL_DELAY", "60s")
        .outbound("WEBHOOK_MAX_DELAY", "60s");
    let app = spawn_app_with(backend, options).await;
    let up = Receiver::start().await;
    let down = Receiver::scripted((0..3).map(|_| Answer::status(500))).await;
    let ok = app.subscribe(&up.url(), &["build.*"]).await.id;
    let failing = app.subscribe(&down.url(), &["build.*"]).await.id;
    let mut all = Vec::new();
    for n in 0..3 {
        let published = app
            .publish(json!({"type": "build.completed", "source": "tests", "data": {"n": n}}))
            .await;
        for delivery in published["deliveries"].as_array().unwrap() {
            all.push(delivery["id"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(all.len(), 6);
    for id in &all {
        app.wait_for_delivery(id, |d| d["attempt_count"] == 1).await;
    }
    all.sort();
    all.reverse(); // newest first: ids are ULIDs

    let list = |query: String| {
        let app: &TestApp = &app;
        async move {
            let reply = app.get(&format!("/api/v1/deliveries?{query}")).await;
            assert_eq!(reply.status, StatusCode::OK, "{query}: {}", reply.body);
            reply.body
        }
    };
    let only = |page: &Value, key: &str, value: &str| {
        let deliveries = page["deliveries"].as_array().unwrap();
        assert!(deliveries.iter().all(|d| d[key] == value), "{page}");
        ids(page)
    };
    assert_eq!(ids(&list(String::new()).await), all);
    let succeeded = only(
        &list(format!("subscription_id={ok}")).await,
        "status",
        "success",
    );
    let retrying = only(
        &list(format!("subscription_id={failing}")).await,
        "status",
        "retrying",
    );
    assert_eq!((succeeded.len(), retrying.len()), (3, 3));
    assert_eq!(
        only(&list("status=success".into()).await, "subscription_id", &ok),
        succeeded
    );
    assert_eq!(
        only(
            &list("status=retrying".into()).await,
            "subscription_id",
            &failing
        ),
        retrying
    );
    assert!(ids(&list("status=failed".into()).await).is_empty());
    let both = list(format!("subscription_id={failing}&status=retrying")).await;
    assert_eq!(ids(&both), retrying);
    assert!(ids(&list(format!("subscription_id={ok}&status=retrying")).await).is_empty());

    let mut pages = Vec::new();
    let mut query = "limit=4".to_owned();
    loop {
        let page = list(query.clone()).await;
        assert_eq!(page["count"], ids(&page).len());
        pages.push(ids(&page));
        match page["next_cursor"].as_str() {
            Some(cursor) => query = format!("limit=4&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [4, 2]);
    assert_eq!(
        pages.concat(),
        all,
        "pages walk every delivery once, in order"
    );
    let first = list(format!("subscription_id={failing}&limit=2")).await;
    let cursor = first["next_cursor"].as_str().expect("a second page");
    let rest = list(format!("subscription_id={failing}&limit=2&cursor={cursor}")).await;
    assert_eq!([ids(&first), ids(&rest)].concat(), retrying);
    assert_eq!(rest["next_cursor"], Value::Null);

    let pending = app.get("/api/v1/deliveries/pending").await.body;
    let mut waiting = ids(&pending);
    waiting.sort();
    let mut expected = retrying.clone();
    expected.sort();
    assert_eq!(waiting, expected, "{pending}");
    let due: Vec<&str> = pending["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["next_attempt_at"].as_str().expect("a next attempt"))
        .collect();
    assert!(
        due.windows(2).all(|w| w[0] <= w[1]),
        "soonest first: {due:?}"
    );

    for bad in [
        "limit=0",
        "limit=501",
        "status=lost",
        "cursor=nope",
        "subscription_id=x",
    ] {
        let reply = app.get(&format!("/api/v1/deliveries?{bad}")).await;
        reply.error(StatusCode::BAD_REQUEST, "invalid_request");
    }
}

async fn stats_count_subscriptions_events_and_outcomes(backend: Backend) {
    let options = outbound_options().outbound("WEBHOOK_MAX_RETRIES", "0");
    let app = spawn_app_with(backend, options).await;
    let good = Receiver::start().await;
    let bad = Receiver::scripted((0..3).map(|_| Answer::status(500))).await;
    app.subscribe(&good.url(), &["*"]).await;
    app.subscribe(&bad.url(), &["*"]).await;
    let idle = app.subscribe(&good.url(), &["ticket.*"]).await;
    app.post(
        &format!("/api/v1/subscriptions/{}/toggle", idle.id),
        json!({}),
    )
    .await;
    let mut deliveries = Vec::new();
    for event_type in ["build.completed", "build.completed", "deployment.completed"] {
        let published = app
            .publish(json!({"type": event_type, "source": "tests"}))
            .await;
        for d in published["deliveries"].as_array().unwrap() {
            deliveries.push(d["id"].as_str().unwrap().to_owned());
        }
    }
    for id in &deliveries {
        app.wait_until_final(id).await;
    }

    let stats = eventually("settled statistics", || async {
        let stats = app.get("/api/v1/stats").await.body;
        (stats["successful_deliveries"] == 3 && stats["failed_deliveries"] == 3).then_some(stats)
    })
    .await;
    assert_eq!(stats["total_subscriptions"], 3, "{stats}");
    assert_eq!(stats["active_subscriptions"], 2, "{stats}");
    assert_eq!(stats["total_events_processed"], 3, "{stats}");
    assert_eq!(stats["pending_retries"], 0, "{stats}");
    assert!(
        stats["avg_delivery_time_ms"].as_f64().unwrap() >= 0.0,
        "{stats}"
    );
    assert_eq!(
        stats["events_by_type"],
        json!({"build.completed": 2, "deployment.completed": 1}),
        "{stats}"
    );
}
