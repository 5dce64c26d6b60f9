//! Outbound safety with the production default (`NEXUS_ALLOW_PRIVATE_TARGETS` unset):
//! plain `http` is refused when a subscription is created, and targets that are or resolve
//! to loopback addresses are refused when connecting, so nothing ever reaches them.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{behaviour, spawn_app_with, Backend, Options};
use crate::receiver::ConnectionCounter;

behaviour!(private_and_loopback_targets_are_refused_unless_allowed);

async fn private_and_loopback_targets_are_refused_unless_allowed(backend: Backend) {
    let options = Options::default()
        .outbound("WEBHOOK_MAX_RETRIES", "1")
        .outbound("WEBHOOK_INITIAL_DELAY", "100ms")
        .outbound("WEBHOOK_MAX_DELAY", "1s");
    let app = spawn_app_with(backend, options).await;
    let target = ConnectionCounter::start().await;
    let port = target.port;

    let plain = app
        .post(
            "/api/v1/subscriptions",
            json!({"name": "plain", "url": format!("http://127.0.0.1:{port}/hook"),
                   "events": ["*"]}),
        )
        .await;
    let message = plain.error(StatusCode::BAD_REQUEST, "invalid_request");
    assert!(message.contains("https"), "{message}");
    let listed = app.get("/api/v1/subscriptions").await;
    assert_eq!(listed.body["count"], 0, "nothing stored");
    app.post(
        "/api/v1/test",
        json!({"url": format!("http://127.0.0.1:{port}/")}),
    )
    .await
    .error(StatusCode::BAD_REQUEST, "invalid_request");

    // These pass the form check (a name's address is only known when connecting, and may
    // change), and every attempt is refused before connecting.
    let targets = [
        format!("https://localhost:{port}/hook"),
        format!("https://127.0.0.1:{port}/hook"),
        format!("https://127.0.0.2:{port}/hook"),
        format!("https://[::1]:{port}/hook"),
        format!("https://[::ffff:127.0.0.1]:{port}/hook"),
    ];
    for (n, url) in targets.iter().enumerate() {
        let created = app
            .post(
                "/api/v1/subscriptions",
                json!({"name": "sneaky", "url": url, "events": [format!("probe.n{n}")]}),
            )
            .await;
        if created.status == StatusCode::BAD_REQUEST {
            continue; // refused at creation already: as good
        }
        assert_eq!(
            created.status,
            StatusCode::CREATED,
            "{url}: {}",
            created.body
        );
        let id = app.publish_one(&format!("probe.n{n}"), json!({})).await;
        let delivery = app.wait_until_final(&id).await;
        assert_eq!(delivery["status"], "failed", "{url}: {delivery}");
        for attempt in delivery["attempts"].as_array().unwrap() {
            assert_eq!(attempt["status_code"], Value::Null, "{url}: {attempt}");
            let error = attempt["error"].as_str().unwrap_or_default();
            assert!(error.starts_with("refused:"), "{url}: {attempt}");
        }
        let tested = app.post("/api/v1/test", json!({"url": url})).await;
        if tested.status == StatusCode::OK {
            assert_eq!(tested.body["success"], false, "{url}: {}", tested.body);
            let error = tested.body["error"].as_str().unwrap_or_default();
            assert!(error.starts_with("refused:"), "{url}: {}", tested.body);
        }
    }
    assert_eq!(target.accepted(), 0, "a refused target was connected to");
}
