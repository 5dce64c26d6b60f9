//! Receivers that fail on purpose: 500 → 500 → 200, a refused connection, a timeout, the
//! last attempt and the DLQ, 410, 429 with `Retry-After`, and redirects.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{behaviour, spawn_app_with, Backend, TestApp};
use crate::outbound_support::{eventually, outbound_options};
use crate::receiver::{refused_url, Answer, Captured, Receiver};

behaviour!(
    a_500_then_500_then_200_is_delivered_on_the_third_attempt,
    a_refused_connection_is_retried_then_failed_into_the_dlq,
    a_timed_out_attempt_is_retried_and_never_sent_twice_while_in_flight,
    after_the_last_attempt_the_delivery_is_failed_with_every_attempt_logged_and_dead_lettered,
    a_410_fails_the_delivery_and_disables_the_subscription,
    throttling_answers_wait_the_throttle_floor_and_retry_after,
    a_redirect_is_a_failure_and_is_never_followed,
);

/// The time between consecutive arrivals.
fn gaps(requests: &[Captured]) -> Vec<Duration> {
    requests.windows(2).map(|w| w[1].at - w[0].at).collect()
}

fn attempts(delivery: &Value) -> &Vec<Value> {
    let attempts = delivery["attempts"].as_array().expect("attempts");
    assert_eq!(delivery["attempt_count"], attempts.len());
    attempts
}

fn status_codes(delivery: &Value) -> Vec<Value> {
    attempts(delivery)
        .iter()
        .map(|a| a["status_code"].clone())
        .collect()
}

/// The delivery's message left the delivery queue for the dead-letter queue: on AWS it is
/// read back from the DLQ; locally the delivery is no longer pending and nothing is queued.
pub async fn assert_dead_lettered(app: &TestApp, delivery_id: &str) {
    let pending = app.get("/api/v1/deliveries/pending").await;
    assert!(
        !pending.body.to_string().contains(delivery_id),
        "{}",
        pending.body
    );
    match &app.aws {
        Some(aws) => {
            let client = aws_sdk_sqs::Client::new(&aws.sdk);
            let dlq = aws.dlq_url.clone().expect("a DLQ");
            let body = eventually("the DLQ message", || async {
                let output = client
                    .receive_message()
                    .queue_url(&dlq)
                    .max_number_of_messages(10)
                    .send()
                    .await
                    .expect("receiving from the DLQ");
                output
                    .messages()
                    .iter()
                    .filter_map(|m| m.body())
                    .find(|b| b.contains(delivery_id))
                    .map(str::to_owned)
            })
            .await;
            let message: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(
                message,
                json!({"kind": "deliver.v1", "delivery_id": delivery_id})
            );
        }
        None => {
            let metrics = app
                .client
                .get(format!("{}/metrics", app.base))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            assert!(
                metrics.contains("\nnexus_webhook_queue_size 0\n"),
                "{metrics}"
            );
        }
    }
}

async fn a_500_then_500_then_200_is_delivered_on_the_third_attempt(backend: Backend) {
    let app = spawn_app_with(backend, outbound_options()).await;
    let long = "x".repeat(5_000);
    let receiver = Receiver::scripted([
        Answer::status(500).body(long.clone()),
        Answer::status(500).body("still down"),
        Answer::status(200).body("thanks"),
    ])
    .await;
    app.subscribe(&receiver.url(), &["build.*"]).await;
    let id = app
        .publish_one("build.failed", json!({"build_id": "b-1"}))
        .await;

    let delivery = app.wait_until_final(&id).await;
    assert_eq!(delivery["status"], "success", "{delivery}");
    assert_eq!(
        status_codes(&delivery),
        [json!(500), json!(500), json!(200)]
    );
    let log = attempts(&delivery);
    let numbers: Vec<u64> = log.iter().map(|a| a["number"].as_u64().unwrap()).collect();
    assert_eq!(numbers, [1, 2, 3]);
    assert_eq!(log[0]["response_body"].as_str().unwrap().len(), 1024);
    assert_eq!(log[0]["response_truncated"], true);
    assert_eq!(log[1]["response_body"], "still down");
    assert_eq!(log[2]["response_body"], "thanks");
    for attempt in log {
        assert!(attempt["latency_ms"].is_u64(), "{attempt}");
        assert!(attempt["at"].is_string(), "{attempt}");
        assert_eq!(attempt["error"], Value::Null, "{attempt}");
    }
    assert_eq!(delivery["next_attempt_at"], Value::Null);

    let requests = receiver.wait_for(3).await;
    assert_eq!(requests.len(), 3);
    for request in &requests {
        assert_eq!(
            request.header("x-nexus-delivery"),
            id,
            "one delivery id throughout"
        );
        assert_eq!(request.body, requests[0].body, "the same payload each time");
    }
    // 100 ms then 200 ms, each ±20% jitter.
    let waited = gaps(&requests);
    assert!(waited[0] >= Duration::from_millis(80), "{waited:?}");
    assert!(waited[1] >= Duration::from_millis(160), "{waited:?}");
}

async fn a_refused_connection_is_retried_then_failed_into_the_dlq(backend: Backend) {
    let app = spawn_app_with(backend, outbound_options()).await;
    app.subscribe(&refused_url().await, &["build.*"]).await;
    let id = app.publish_one("build.started", json!({})).await;

    let delivery = app.wait_until_final(&id).await;
    assert_eq!(delivery["status"], "failed", "{delivery}");
    assert_eq!(
        status_codes(&delivery),
        [Value::Null, Value::Null, Value::Null]
    );
    for attempt in attempts(&delivery) {
        let error = attempt["error"].as_str().expect("an error");
        assert!(error.contains("connection"), "{attempt}");
        assert_eq!(attempt["response_body"], Value::Null);
    }
    assert_dead_lettered(&app, &id).await;
}

async fn a_timed_out_attempt_is_retried_and_never_sent_twice_while_in_flight(backend: Backend) {
    let options = outbound_options().outbound("WEBHOOK_TIMEOUT", "1s");
    let app = spawn_app_with(backend, options).await;
    let receiver = Receiver::scripted([Answer::status(200).delay(Duration::from_secs(3))]).await;
    app.subscribe(&receiver.url(), &["build.*"]).await;
    let id = app.publish_one("build.completed", json!({})).await;

    let delivery = app.wait_until_final(&id).await;
    assert_eq!(delivery["status"], "success", "{delivery}");
    assert_eq!(status_codes(&delivery), [Value::Null, json!(200)]);
    let first = &attempts(&delivery)[0];
    assert!(
        first["error"].as_str().unwrap().contains("timed out"),
        "{first}"
    );
    assert!(first["latency_ms"].as_u64().unwrap() >= 1_000, "{first}");
    // The slow request is answered after 3 s; nothing else may arrive meanwhile, and the
    // retry waits at least the throttle floor (300 ms) after the 1 s timeout.
    let requests = receiver.requests();
    assert_eq!(requests.len(), 2, "sent again while in flight?");
    assert!(
        gaps(&requests)[0] >= Duration::from_millis(1_300),
        "{:?}",
        gaps(&requests)
    );
}

async fn after_the_last_attempt_the_delivery_is_failed_with_every_attempt_logged_and_dead_lettered(
    backend: Backend,
) {
    let app = spawn_app_with(backend, outbound_options()).await;
    let receiver =
        Receiver::scripted((0..3).map(|n| Answer::status(503).body(format!("no {n}")))).await;
    app.subscribe(&receiver.url(), &["deployment.failed"]).await;
    let id = app.publish_one("deployment.failed", json!({})).await;

    let delivery = app.wait_until_final(&id).await;
    assert_eq!(delivery["status"], "failed", "{delivery}");
    assert_eq!(
        status_codes(&delivery),
        [json!(503), json!(503), json!(503)]
    );
    let bodies: Vec<&str> = attempts(&delivery)
        .iter()
        .map(|a| a["response_body"].as_str().unwrap())
        .collect();
    assert_eq!(bodies, ["no 0", "no 1", "no 2"]);
    assert_eq!(delivery["next_attempt_at"], Value::Null);
    assert_dead_lettered(&app, &id).await;
    assert_eq!(
        receiver.requests().len(),
        3,
        "WEBHOOK_MAX_RETRIES=2: three attempts"
    );
    let failed = app.get("/api/v1/deliveries?status=failed").await;
    assert_eq!(failed.body["deliveries"][0]["id"], id.as_str());
}

async fn a_410_fails_the_delivery_and_disables_the_subscription(backend: Backend) {
    let app = spawn_app_with(backend, outbound_options()).await;
    let receiver = Receiver::scripted([Answer::status(410)]).await;
    let subscription = app.subscribe(&receiver.url(), &["build.*"]).await;
    let id = app.publish_one("build.completed", json!({})).await;

    let delivery = app.wait_until_final(&id).await;
    assert_eq!(delivery["status"], "failed", "{delivery}");
    assert_eq!(status_codes(&delivery), [json!(410)]);
    let shown = app
        .get(&format!("/api/v1/subscriptions/{}", subscription.id))
        .await;
    assert_eq!(shown.body["active"], false, "{}", shown.body);
    let later = app
        .publish(json!({"type": "build.started", "source": "tests"}))
        .await;
    assert_eq!(later["subscriptions_notified"], 0);
    assert_eq!(receiver.requests().len(), 1);
}

async fn throttling_answers_wait_the_throttle_floor_and_retry_after(backend: Backend) {
    let app = spawn_app_with(backend, outbound_options()).await;
    let receiver = Receiver::scripted([
        Answer::status(502),
        Answer::status(429).header("Retry-After", "1"),
        Answer::status(200),
    ])
    .await;
    app.subscribe(&receiver.url(), &["build.*"]).await;
    let id = app.publish_one("build.completed", json!({})).await;

    let delivery = app.wait_until_final(&id).await;
    assert_eq!(delivery["status"], "success", "{delivery}");
    assert_eq!(
        status_codes(&delivery),
        [json!(502), json!(429), json!(200)]
    );
    let waited = gaps(&receiver.wait_for(3).await);
    // A 502 is a throttle: at least WEBHOOK_THROTTLE_DELAY (300 ms), not the 100 ms
    // backoff. `Retry-After: 1` asks for a second (a millisecond of clock rounding allowed).
    assert!(waited[0] >= Duration::from_millis(300), "{waited:?}");
    assert!(waited[1] >= Duration::from_millis(999), "{waited:?}");
}

async fn a_redirect_is_a_failure_and_is_never_followed(backend: Backend) {
    let app = spawn_app_with(backend, outbound_options()).await;
    let elsewhere = Receiver::start().await;
    let receiver = Receiver::scripted([
        Answer::status(302).header("Location", &elsewhere.url()),
        Answer::status(307).header("Location", &elsewhere.url()),
        Answer::status(200),
    ])
    .await;
    app.subscribe(&receiver.url(), &["build.*"]).await;
    let id = app.publish_one("build.completed", json!({})).await;

    let delivery = app.wait_until_final(&id).await;
    assert_eq!(delivery["status"], "success", "{delivery}");
    assert_eq!(
        status_codes(&delivery),
        [json!(302), json!(307), json!(200)]
    );
    assert_eq!(receiver.requests().len(), 3);
    assert!(elsewhere.requests().is_empty(), "a redirect was followed");
}
