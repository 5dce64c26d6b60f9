//! Outbound signatures judged by code no one here wrote: real deliveries are captured by a
//! receiver and handed to `scripts/outbound_oracle.py`, which verifies `webhook-*` with the
//! PyPI `standardwebhooks` package and `X-Nexus-Signature-256` with the brief's own Python
//! `verify_webhook`. Needs the venv's python (`NEXUS_TEST_PYTHON`, set by `scripts/test.sh`).

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::{json, Value};
use tokio::process::Command;

use crate::helpers::{behaviour, run_oracle, spawn_app_with, test_python, Backend};
use crate::outbound_support::{assert_signed, outbound_options};
use crate::receiver::{Answer, Captured, Receiver};

behaviour!(captured_deliveries_verify_with_standardwebhooks_and_the_briefs_verify_webhook);

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/outbound_oracle.py");

/// One captured delivery as the oracle reads it.
fn case(name: &str, request: &Captured, nexus_secret: &str, standard: &[&str]) -> Value {
    let headers: serde_json::Map<String, Value> = request
        .headers
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), json!(v.to_str().unwrap())))
        .collect();
    json!({
        "name": name,
        "headers": headers,
        "body_base64": STANDARD.encode(&request.body),
        "nexus_secret": nexus_secret,
        "standard_secrets": standard,
    })
}

async fn captured_deliveries_verify_with_standardwebhooks_and_the_briefs_verify_webhook(
    backend: Backend,
) {
    let Some(python) = test_python("the Python oracle") else {
        return;
    };
    let app = spawn_app_with(backend, outbound_options()).await;
    let receiver = Receiver::scripted([Answer::status(200), Answer::status(200)]).await;
    let subscription = app.subscribe(&receiver.url(), &["*"]).await;
    let old = subscription.secret.clone();
    let mut cases = Vec::new();

    // An event with non-ASCII data, then the subscription's test send.
    app.publish_one(
        "release.completed",
        json!({"version": "2.0.0", "notes": "d\u{e9}ploy\u{e9} \u{2705}", "n": 12345}),
    )
    .await;
    let requests = receiver.wait_for(1).await;
    cases.push(case("published event", &requests[0], &old, &[&old]));
    let tested = app
        .post(
            &format!("/api/v1/subscriptions/{}/test", subscription.id),
            json!({}),
        )
        .await;
    assert_eq!(tested.body["success"], true, "{}", tested.body);
    let requests = receiver.wait_for(2).await;
    cases.push(case("subscription test", &requests[1], &old, &[&old]));

    // A rotation: within the grace period the old and the new secret both sign
    // `webhook-signature`; `X-Nexus-Signature-256` (one value) uses the new one. The
    // delivery is retried once, so a retried attempt is checked too.
    let rotated = app
        .post(
            &format!("/api/v1/subscriptions/{}/rotate-secret", subscription.id),
            json!({}),
        )
        .await;
    let new = rotated.body["secret"]
        .as_str()
        .expect("the new secret")
        .to_owned();
    receiver.script([Answer::status(500)]);
    let id = app
        .publish_one("build.failed", json!({"failed_tests": 3}))
        .await;
    assert_eq!(app.wait_until_final(&id).await["status"], "success");
    let requests = receiver.wait_for(4).await;
    for (n, request) in requests[2..4].iter().enumerate() {
        assert_signed(request, &new, &[&new, &old]);
        let name = format!("during the grace period, attempt {}", n + 1);
        cases.push(case(&name, request, &new, &[&new, &old]));
    }

    // A URL test send signed with a secret the caller gives.
    let given = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let sent = app
        .post(
            "/api/v1/test",
            json!({"url": receiver.url(), "secret": given, "event_type": "release.started"}),
        )
        .await;
    assert_eq!(sent.body["success"], true, "{}", sent.body);
    let requests = receiver.wait_for(5).await;
    cases.push(case("URL test send", &requests[4], given, &[given]));

    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("captured.json");
    std::fs::write(&path, json!({ "deliveries": cases }).to_string()).unwrap();
    let mut command = Command::new(&python);
    command.arg(SCRIPT).arg(&path);
    let report = run_oracle(command).await;
    assert!(
        report.contains(&format!("outbound oracle: {} deliveries", cases.len())),
        "{report}"
    );
}
