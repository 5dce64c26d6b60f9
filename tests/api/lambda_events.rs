//! Every API Gateway event in `events/` through the Lambda handler path: lambda_http's
//! adapter (what `lambda_http::run` drives) in front of the function's router, on the AWS
//! adapters against moto. The SQS and schedule events go through their handlers in
//! `aws_outbound` (`handler.rs`, `sweep.rs`).

use std::collections::BTreeMap;
use std::path::Path;

use lambda_http::request::LambdaRequest;
use lambda_http::{Adapter, Context, LambdaEvent};
use serde_json::Value;
use tower::ServiceExt;

use crate::helpers::{add_outbound, aws_endpoint, aws_fixture, Options};

/// The function that owns a route, as template.yaml routes it.
fn function_for(route_key: &str) -> &'static str {
    if route_key.starts_with("POST /api/webhook/") {
        "ingest"
    } else {
        "api"
    }
}

/// The fixtures in `events/` that `keep` selects, as `(file name, JSON)`, by name.
pub fn fixtures(keep: impl Fn(&Value) -> bool) -> Vec<(String, Value)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("events");
    let mut fixtures: Vec<(String, Value)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| {
            let path = entry.unwrap().path();
            let json = serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (
                path.file_name().unwrap().to_string_lossy().into_owned(),
                json,
            )
        })
        .filter(|(_, json)| keep(json))
        .collect();
    fixtures.sort_by(|a, b| a.0.cmp(&b.0));
    fixtures
}

struct Invocation {
    status: u16,
    body: Value,
}

async fn invoke(router: &axum::Router, event: &Value) -> Invocation {
    let request: LambdaRequest =
        serde_json::from_value(event.clone()).expect("an API Gateway v2 event");
    let adapter = Adapter::from(router.clone());
    let response = adapter
        .oneshot(LambdaEvent::new(request, Context::default()))
        .await
        .expect("the handler answers");
    let response = serde_json::to_value(&response).expect("a serialisable Lambda response");
    assert_eq!(response["isBase64Encoded"], false, "JSON answers are text");
    let body = response["body"].as_str().expect("a body");
    Invocation {
        status: response["statusCode"].as_u64().expect("a status") as u16,
        body: serde_json::from_str(body).expect("a JSON body"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_fixture_gets_the_expected_answer() {
    if aws_endpoint().is_none() {
        return;
    }
    let options = Options::default()
        .secret("WEBHOOK_SECRET_flickclaw_putio", "abc123")
        .secret("NEXUS_API_KEY", "test-api-key");
    let (fixture, mut config) = aws_fixture(&options).await;
    add_outbound(&fixture.sdk, &mut config).await; // app_state needs the delivery queues
    let state = nexus_shared::adapters::aws::app_state(&fixture.sdk, config).unwrap();
    let routers = BTreeMap::from([
        ("ingest", nexus_shared::http::ingest_router(state.clone())),
        ("api", nexus_shared::http::api_router(state)),
    ]);

    let mut events = fixtures(|json| json.get("routeKey").is_some());
    // Ingest first, so the consumer events see what was stored.
    events.sort_by_key(|(name, json)| {
        (
            function_for(json["routeKey"].as_str().unwrap()) != "ingest",
            name.clone(),
        )
    });

    let mut checked = Vec::new();
    for (name, json) in &events {
        assert_eq!(json["version"], "2.0", "{name} is an HTTP API (v2) event");
        let router = &routers[function_for(json["routeKey"].as_str().unwrap())];
        let reply = invoke(router, json).await;
        let body = &reply.body;
        match name.as_str() {
            "ingest-putio-json.json" => {
                assert_eq!(reply.status, 200, "{body}");
                assert!(body["id"].as_str().unwrap().starts_with("flickclaw:"));
            }
            "ingest-putio-wrong-secret.json" => {
                assert_eq!(reply.status, 401, "{body}");
                assert_eq!(body["error"]["code"], "unauthorized");
            }
            "ingest-github-redelivery.json" => {
                assert_eq!(reply.status, 200, "{body}");
                let again = invoke(router, json).await;
                assert_eq!(again.body["id"], body["id"]);
                assert_eq!(again.body["duplicate"], true);
            }
            "ingest-slack-form-base64.json" => assert_eq!(reply.status, 200, "{body}"),
            "ingest-bad-json.json" => {
                assert_eq!(reply.status, 400, "{body}");
                assert_eq!(body["error"]["code"], "invalid_json");
            }
            "api-pending.json" => {
                assert_eq!(reply.status, 200, "{body}");
                assert_eq!(body["count"], 3, "{body}");
                assert_eq!(
                    body["agents"]["flickclaw"][0]["payload"]["transfer_id"],
                    12345
                );
                let main = body["agents"]["main"].as_array().unwrap();
                assert_eq!(main[0]["source"], "github");
                assert_eq!(main[0]["headers"]["x-hub-signature-256"], "[redacted]");
                assert_eq!(main[1]["payload_encoding"], "text");
                assert!(main[1]["payload"]
                    .as_str()
                    .unwrap()
                    .contains("command=%2Fdeploy"));
            }
            "api-pending-no-key.json" => {
                assert_eq!(reply.status, 401, "{body}");
                assert_eq!(body["error"]["code"], "unauthorized");
            }
            "api-delete-items.json" => {
                assert_eq!(reply.status, 200, "{body}");
                assert_eq!(body["unknown"].as_array().unwrap().len(), 2, "{body}");
            }
            other => panic!("events/{other} has no expected answer here: add one"),
        }
        checked.push(name.clone());
    }
    assert_eq!(checked.len(), 8, "checked: {checked:?}");
}
