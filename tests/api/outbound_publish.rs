//! Publishing: fan-out to matching active subscriptions, idempotent re-publishing, batches
//! and refused events.

use std::collections::BTreeSet;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{behaviour, spawn_app_with, Backend, TestApp};
use crate::outbound_support::{assert_refused, outbound_options};
use crate::receiver::{Answer, Receiver};

behaviour!(
    fan_out_reaches_each_matching_active_subscription_once,
    a_republish_with_the_same_idempotency_key_returns_the_first_result_and_delivers_once,
    a_batch_publishes_each_event_and_fans_each_out,
    invalid_events_are_refused_and_nothing_is_published,
);

/// Ids of the subscriptions a publish answer says it delivers to.
fn notified(published: &Value) -> BTreeSet<String> {
    let deliveries = published["deliveries"].as_array().expect("deliveries");
    assert_eq!(published["subscriptions_notified"], deliveries.len());
    deliveries
        .iter()
        .map(|d| d["subscription_id"].as_str().unwrap().to_owned())
        .collect()
}

async fn total_events(app: &TestApp) -> u64 {
    let stats = app.get("/api/v1/stats").await;
    assert_eq!(stats.status, StatusCode::OK, "{}", stats.body);
    stats.body["total_events_processed"].as_u64().unwrap()
}

async fn fan_out_reaches_each_matching_active_subscription_once(backend: Backend) {
    let app = spawn_app_with(backend, outbound_options()).await;
    let receiver = Receiver::start().await;
    let subscribe = |name: &'static str, extra: Value| {
        let mut body = json!({"name": name, "url": receiver.url_for(name)});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let app = &app;
        async move { (name, app.create_subscription(body).await.id) }
    };
    let subscriptions = [
        subscribe("exact", json!({"events": ["build.completed"]})).await,
        subscribe("wildcard", json!({"events": ["build.*"]})).await,
        subscribe("everything", json!({"events": ["*"]})).await,
        subscribe("other-type", json!({"events": ["deployment.completed"]})).await,
        subscribe("inactive", json!({"events": ["build.*"]})).await,
        subscribe(
            "nexus",
            json!({"events": ["build.*"], "project_filter": "NEXUS"}),
        )
        .await,
        subscribe(
            "other-project",
            json!({"events": ["build.*"], "project_filter": "OTHER"}),
        )
        .await,
        subscribe(
            "platform-urgent",
            json!({"events": ["build.*"], "team_filter": "platform",
                   "severity_filter": ["critical", "high"]}),
        )
        .await,
        subscribe(
            "low-only",
            json!({"events": ["build.*"], "severity_filter": ["low"]}),
        )
        .await,
    ];
    let id_of = |name: &str| {
        subscriptions
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap()
            .1
            .clone()
    };
    let off = app
        .post(
            &format!("/api/v1/subscriptions/{}/toggle", id_of("inactive")),
            json!({}),
        )
        .await;
    assert_eq!(off.body["active"], false);

    let published = app
        .publish(json!({
            "type": "build.completed",
            "source": "jenkins",
            "data": {"build_id": "build-12345"},
            "metadata": {"project": "NEXUS", "team": "platform", "severity": "critical"}
        }))
        .await;
    let matching = [
        "exact",
        "wildcard",
        "everything",
        "nexus",
        "platform-urgent",
    ];
    assert_eq!(
        notified(&published),
        matching.iter().map(|n| id_of(n)).collect::<BTreeSet<_>>()
    );
    assert!(published["id"].as_str().unwrap().starts_with("evt_"));
    assert_eq!(published["duplicate"], false);

    // Severity can come from the data too; no project or team here.
    let second = app
        .publish(json!({"type": "build.started", "source": "jenkins",
                        "data": {"severity": "low"}}))
        .await;
    let second_matching = ["wildcard", "everything", "low-only"];
    assert_eq!(
        notified(&second),
        second_matching
            .iter()
            .map(|n| id_of(n))
            .collect::<BTreeSet<_>>()
    );

    receiver
        .wait_for(matching.len() + second_matching.len())
        .await;
    for delivery in published["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .chain(second["deliveries"].as_array().unwrap())
    {
        let id = delivery["id"].as_str().unwrap();
        assert_eq!(app.wait_until_final(id).await["status"], "success");
    }
    for (name, _) in &subscriptions {
        let expected =
            usize::from(matching.contains(name)) + usize::from(second_matching.contains(name));
        let got = receiver.requests_for(name);
        assert_eq!(got.len(), expected, "{name} got {} requests", got.len());
    }
    let listed = app.get("/api/v1/deliveries?limit=100").await;
    assert_eq!(
        listed.body["count"],
        matching.len() + second_matching.len(),
        "{}",
        listed.body
    );
}

async fn a_republish_with_the_same_idempotency_key_returns_the_first_result_and_delivers_once(
    backend: Backend,
) {
    let app = spawn_app_with(backend, outbound_options()).await;
    // The first delivery is still in flight when the client publishes again.
    let receiver =
        Receiver::scripted([Answer::status(200).delay(Duration::from_millis(800))]).await;
    let subscription = app.subscribe(&receiver.url(), &["release.*"]).await;
    let event = json!({"type": "release.completed", "source": "orchestrator",
                       "data": {"release_id": "rel-123"}});
    let publish = |body: Value| {
        let app = &app;
        async move {
            let reply = app
                .client
                .post(format!("{}/api/v1/events", app.base))
                .bearer_auth(&app.api_key)
                .header("Idempotency-Key", "release-rel-123")
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(reply.status(), StatusCode::ACCEPTED);
            reply.json::<Value>().await.unwrap()
        }
    };

    let first = publish(event.clone()).await;
    receiver.wait_for(1).await;
    let again = publish(event.clone()).await;
    let delivery = first["deliveries"][0]["id"].as_str().unwrap();
    assert_eq!(app.wait_until_final(delivery).await["status"], "success");
    let later = publish(json!({"type": "release.failed", "source": "changed"})).await;

    assert_eq!(first["duplicate"], false);
    for repeat in [&again, &later] {
        assert_eq!(repeat["duplicate"], true, "{repeat}");
        assert_eq!(repeat["id"], first["id"]);
        assert_eq!(repeat["type"], "release.completed");
        assert_eq!(repeat["timestamp"], first["timestamp"]);
        assert_eq!(repeat["deliveries"], first["deliveries"]);
    }
    // A marker published after the repeats arrives after anything they could have sent.
    let marker = app
        .publish_one("release.started", json!({"marker": true}))
        .await;
    app.wait_until_final(&marker).await;
    let requests = receiver.requests();
    let events: Vec<Value> = requests.iter().map(|r| r.json()["id"].clone()).collect();
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[0], first["id"]);
    let deliveries = app
        .get(&format!(
            "/api/v1/deliveries?subscription_id={}",
            subscription.id
        ))
        .await;
    assert_eq!(deliveries.body["count"], 2, "{}", deliveries.body);
    assert_eq!(app.delivery(delivery).await["attempt_count"], 1);
}

async fn a_batch_publishes_each_event_and_fans_each_out(backend: Backend) {
    let app = spawn_app_with(backend, outbound_options()).await;
    let receiver = Receiver::start().await;
    app.subscribe(&receiver.url(), &["build.*"]).await;
    let batch = json!({"events": [
        {"type": "build.started", "source": "jenkins", "data": {"n": 1}},
        {"type": "deployment.started", "source": "argo", "data": {"n": 2}},
        {"type": "build.completed", "source": "jenkins", "data": {"n": 3}},
    ]});
    let send = |key: Option<&'static str>| {
        let app = &app;
        let batch = batch.clone();
        async move {
            let mut request = app
                .client
                .post(format!("{}/api/v1/events/batch", app.base))
                .bearer_auth(&app.api_key)
                .json(&batch);
            if let Some(key) = key {
                request = request.header("Idempotency-Key", key);
            }
            let reply = request.send().await.unwrap();
            assert_eq!(reply.status(), StatusCode::ACCEPTED);
            reply.json::<Value>().await.unwrap()
        }
    };

    let published = send(Some("batch-1")).await;
    assert_eq!(published["count"], 3);
    let events = published["events"].as_array().unwrap();
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        ["build.started", "deployment.started", "build.completed"]
    );
    let fanned: Vec<usize> = events
        .iter()
        .map(|e| e["deliveries"].as_array().unwrap().len())
        .collect();
    assert_eq!(fanned, [1, 0, 1]);
    let requests = receiver.wait_for(2).await;
    let mut arrived: Vec<Value> = requests
        .iter()
        .map(|r| r.json()["data"]["n"].clone())
        .collect();
    arrived.sort_by_key(|n| n.as_u64());
    assert_eq!(arrived, [json!(1), json!(3)]);

    let repeated = send(Some("batch-1")).await;
    for (first, again) in events.iter().zip(repeated["events"].as_array().unwrap()) {
        assert_eq!(again["duplicate"], true);
        assert_eq!(again["id"], first["id"]);
    }
    assert_eq!(total_events(&app).await, 3);
}

async fn invalid_events_are_refused_and_nothing_is_published(backend: Backend) {
    let app = spawn_app_with(backend, outbound_options()).await;
    let receiver = Receiver::start().await;
    app.subscribe(&receiver.url(), &["*"]).await;
    let cases = [
        ("no type", json!({"source": "s"})),
        (
            "bad type",
            json!({"type": "Build Completed", "source": "s"}),
        ),
        ("no source", json!({"type": "build.completed"})),
        (
            "blank source",
            json!({"type": "build.completed", "source": " "}),
        ),
        (
            "metadata not an object",
            json!({"type": "a.b", "source": "s", "metadata": [1]}),
        ),
        (
            "unknown field",
            json!({"type": "a.b", "source": "s", "extra": 1}),
        ),
    ];
    for (case, body) in cases {
        assert_refused(&app.post("/api/v1/events", body).await, case);
    }
    let bad_batches = [
        ("empty batch", json!({"events": []})),
        (
            "one bad event",
            json!({"events": [{"type": "a.b", "source": "s"}, {"type": "", "source": "s"}]}),
        ),
        (
            "too many",
            json!({"events": vec![json!({"type": "a.b", "source": "s"}); 101]}),
        ),
    ];
    for (case, body) in bad_batches {
        assert_refused(&app.post("/api/v1/events/batch", body).await, case);
    }
    assert_eq!(total_events(&app).await, 0);
    let listed = app.get("/api/v1/deliveries").await;
    assert_eq!(listed.body["count"], 0, "{}", listed.body);
    assert!(receiver.requests().is_empty());
}
