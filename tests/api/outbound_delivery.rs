//! What a subscriber receives: the brief's payload and headers, both signatures checked
//! here in Rust; the test endpoints; the signature debug endpoint.

use chrono::{DateTime, SecondsFormat};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{behaviour, spawn_app_with, Backend};
use crate::outbound_support::{assert_signed, nexus_signature, outbound_options};
use crate::receiver::{Answer, Receiver};

behaviour!(
    a_delivery_is_the_briefs_payload_with_both_signatures,
    the_test_endpoints_send_a_signed_test_event_and_store_nothing,
    verify_signature_answers_valid_and_invalid_in_both_forms,
);

async fn a_delivery_is_the_briefs_payload_with_both_signatures(backend: Backend) {
    let app = spawn_app_with(backend, outbound_options()).await;
    let receiver = Receiver::start().await;
    let subscription = app.subscribe(&receiver.url(), &["release.completed"]).await;
    let data = json!({"release_id": "rel-2.0.0", "version": "2.0.0", "status": "success",
                      "deployed_to": ["staging", "production"], "note": "caf\u{e9} \u{1f680}"});
    let metadata = json!({"project": "NEXUS", "team": "platform", "environment": "production"});
    let published = app
        .publish(
            json!({"type": "release.completed", "source": "orchestrator",
                        "data": data, "metadata": metadata}),
        )
        .await;
    let delivery_id = published["deliveries"][0]["id"].as_str().unwrap();

    let request = receiver.wait_for(1).await.remove(0);
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/hooks/nexus");
    assert_eq!(request.header("content-type"), "application/json");
    let body: Value = request.json();
    assert_eq!(
        body,
        json!({"id": published["id"], "type": "release.completed",
               "timestamp": published["timestamp"], "source": "orchestrator",
               "data": data, "metadata": metadata})
    );
    // The brief's key order, compact, as the bytes that were signed.
    let raw = std::str::from_utf8(&request.body).unwrap();
    let positions: Vec<usize> = ["\"id\":", "\"type\":", "\"timestamp\":", "\"source\":"]
        .iter()
        .map(|key| raw.find(key).unwrap_or_else(|| panic!("{key} in {raw}")))
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{raw}");
    assert!(raw.starts_with("{\"id\":\"evt_"), "{raw}");

    assert_eq!(request.header("x-nexus-delivery"), delivery_id);
    assert_eq!(request.header("webhook-id"), delivery_id);
    assert_eq!(request.header("x-nexus-event"), "release.completed");
    let timestamp = request.header("x-nexus-timestamp");
    let parsed = DateTime::parse_from_rfc3339(timestamp).expect("an RFC 3339 timestamp");
    assert_eq!(
        parsed.to_utc().to_rfc3339_opts(SecondsFormat::Secs, true),
        timestamp,
        "UTC to the second"
    );
    assert_eq!(
        request.header("webhook-timestamp"),
        parsed.timestamp().to_string(),
        "both timestamps name the same instant"
    );
    let age = chrono::Utc::now().timestamp() - parsed.timestamp();
    assert!((0..60).contains(&age), "signed {age} s ago");
    assert!(request
        .header("x-nexus-signature-256")
        .starts_with("sha256="));
    assert!(request.header("webhook-signature").starts_with("v1,"));
    assert_signed(&request, &subscription.secret, &[&subscription.secret]);

    let mut tampered = request.clone();
    tampered.body = raw.replace("2.0.0", "2.0.1").into_bytes().into();
    let forged = nexus_signature(&subscription.secret, timestamp, &tampered.body);
    assert_ne!(forged, request.header("x-nexus-signature-256"));
    assert_eq!(app.wait_until_final(delivery_id).await["status"], "success");
}

async fn the_test_endpoints_send_a_signed_test_event_and_store_nothing(backend: Backend) {
    let app = spawn_app_with(backend, outbound_options()).await;
    let receiver = Receiver::start().await;
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    let tested = app
        .post(
            "/api/v1/test",
            json!({"url": receiver.url_for("adhoc"), "secret": secret,
                   "event_type": "release.started"}),
        )
        .await;
    assert_eq!(tested.status, StatusCode::OK, "{}", tested.body);
    assert_eq!(tested.body["success"], true);
    assert_eq!(tested.body["status_code"], 200);
    assert_eq!(tested.body["event_type"], "release.started");
    let request = receiver.wait_for(1).await.remove(0);
    assert_eq!(request.path, "/hooks/adhoc");
    assert_eq!(request.header("x-nexus-event"), "release.started");
    assert_eq!(request.json()["type"], "release.started");
    assert_eq!(
        request.header("x-nexus-delivery"),
        tested.body["delivery_id"]
    );
    assert_signed(&request, secret, &[secret]);

    let subscription = app.subscribe(&receiver.url_for("sub"), &["build.*"]).await;
    let path = format!("/api/v1/subscriptions/{}/test", subscription.id);
    let ok = app.post(&path, json!({})).await;
    assert_eq!(
        (ok.status, &ok.body["success"]),
        (StatusCode::OK, &json!(true)),
        "{}",
        ok.body
    );
    let request = receiver.wait_for(2).await.remove(1);
    assert_eq!(request.path, "/hooks/sub");
    assert_eq!(request.json()["source"], "nexus.test");
    assert!(request.json()["data"]["test"].as_bool().unwrap());
    assert_signed(&request, &subscription.secret, &[&subscription.secret]);

    receiver.script([Answer::status(500).body("not today")]);
    let failed = app.post(&path, json!({"event_type": "build.failed"})).await;
    assert_eq!(failed.status, StatusCode::OK, "{}", failed.body);
    assert_eq!(failed.body["success"], false);
    assert_eq!(failed.body["status_code"], 500);
    assert_eq!(failed.body["response_body"], "not today");
    assert_eq!(
        receiver.wait_for(3).await[2].header("x-nexus-event"),
        "build.failed"
    );

    let listed = app.get("/api/v1/deliveries").await;
    assert_eq!(
        listed.body["count"], 0,
        "test sends are not deliveries: {}",
        listed.body
    );
    let refused = app.post("/api/v1/test", json!({"url": "ftp://x"})).await;
    refused.error(StatusCode::BAD_REQUEST, "invalid_request");
}

async fn verify_signature_answers_valid_and_invalid_in_both_forms(backend: Backend) {
    let app = spawn_app_with(backend, outbound_options()).await;
    let receiver = Receiver::start().await;
    let subscription = app.subscribe(&receiver.url(), &["build.completed"]).await;
    app.publish_one("build.completed", json!({"build_id": "build-12345"}))
        .await;
    let delivered = receiver.wait_for(1).await.remove(0);
    let payload = std::str::from_utf8(&delivered.body).unwrap().to_owned();
    let timestamp = delivered.header("x-nexus-timestamp").to_owned();
    let signature = delivered.header("x-nexus-signature-256").to_owned();

    let by_query = |payload: &str, signature: &str, secret: &str| {
        // The brief's curl: POST with every field in the query string (`-G`).
        let request = app
            .client
            .post(format!("{}/api/v1/verify-signature", app.base))
            .bearer_auth(&app.api_key)
            .query(&[
                ("payload", payload),
                ("timestamp", timestamp.as_str()),
                ("signature", signature),
                ("secret", secret),
            ]);
        async move {
            let reply = request.send().await.unwrap();
            assert_eq!(reply.status(), StatusCode::OK);
            reply.json::<Value>().await.unwrap()
        }
    };
    let by_json = |payload: &str, signature: &str, secret: &str| {
        app.post(
            "/api/v1/verify-signature",
            json!({"payload": payload, "timestamp": timestamp, "signature": signature,
                   "secret": secret}),
        )
    };
    let secret = subscription.secret.as_str();
    let bare = signature.strip_prefix("sha256=").unwrap();
    let tampered = payload.replace("12345", "12346");

    let valid = by_query(&payload, &signature, secret).await;
    assert_eq!(valid["valid"], true, "{valid}");
    assert_eq!(valid["expected_signature"], signature);
    assert_eq!(by_query(&payload, bare, secret).await["valid"], true);
    assert_eq!(
        by_query(&tampered, &signature, secret).await["valid"],
        false
    );
    assert_eq!(
        by_query(&payload, &signature, "whsec_wrong").await["valid"],
        false
    );
    assert_eq!(
        by_query(&payload, "sha256=zz", secret).await["valid"],
        false
    );

    let valid = by_json(&payload, &signature, secret).await;
    assert_eq!(
        (valid.status, &valid.body["valid"]),
        (StatusCode::OK, &json!(true))
    );
    assert_eq!(
        by_json(&tampered, &signature, secret).await.body["valid"],
        false
    );
    let incomplete = app
        .post("/api/v1/verify-signature", json!({"payload": payload}))
        .await;
    incomplete.error(StatusCode::BAD_REQUEST, "invalid_request");
}
