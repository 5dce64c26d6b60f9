//! Subscription management: the secret shown once, CRUD, toggling, list filters,
//! validation and unknown ids.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{behaviour, spawn_app_with, Backend};
use crate::outbound_support::{assert_refused, outbound_options};

behaviour!(
    the_secret_is_shown_at_creation_and_rotation_only,
    subscriptions_are_patched_toggled_and_deleted,
    lists_filter_by_active_state_and_event_type_with_wildcards,
    invalid_subscriptions_are_refused_and_nothing_is_stored,
    unknown_subscription_ids_are_not_found,
);

const TARGET: &str = "https://your-app.com/webhooks/nexus";

fn ids(list: &Value) -> Vec<&str> {
    list["subscriptions"]
        .as_array()
        .expect("a subscription list")
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect()
}

async fn the_secret_is_shown_at_creation_and_rotation_only(backend: Backend) {
    let app = spawn_app_with(backend, outbound_options()).await;
    let created = app
        .create_subscription(json!({
            "name": "CI/CD Notifier",
            "url": TARGET,
            "events": ["build.completed", "build.failed", "deployment.completed"],
            "project_filter": "NEXUS",
            "team_filter": "platform",
            "severity_filter": ["critical", "high"],
            "description": "Notify CI/CD dashboard of build events",
            "rate_limit": 60
        }))
        .await;

    let random = STANDARD
        .decode(
            created
                .secret
                .strip_prefix("whsec_")
                .expect("a whsec_ secret"),
        )
        .expect("base64 after whsec_");
    assert!(random.len() >= 24, "{} random bytes", random.len());
    assert!(created.id.starts_with("sub_"), "{}", created.id);
    let body = &created.body;
    assert_eq!(body["name"], "CI/CD Notifier");
    assert_eq!(body["url"], TARGET);
    assert_eq!(
        body["events"],
        json!(["build.completed", "build.failed", "deployment.completed"])
    );
    assert_eq!(body["project_filter"], "NEXUS");
    assert_eq!(body["team_filter"], "platform");
    assert_eq!(body["severity_filter"], json!(["critical", "high"]));
    assert_eq!(body["rate_limit"], 60);
    assert_eq!(body["active"], true);
    assert!(body["created_at"].as_str().unwrap().ends_with('Z'));

    let got = app
        .get(&format!("/api/v1/subscriptions/{}", created.id))
        .await;
    assert_eq!(got.status, StatusCode::OK);
    assert!(got.body.get("secret").is_none(), "{}", got.body);
    let mut shown = created.body.clone();
    shown.as_object_mut().unwrap().remove("secret");
    assert_eq!(got.body, shown);
    let listed = app.get("/api/v1/subscriptions").await;
    assert_eq!(ids(&listed.body), [created.id.as_str()]);
    assert!(!listed.body.to_string().contains(&created.secret));

    let rotated = app
        .post(
            &format!("/api/v1/subscriptions/{}/rotate-secret", created.id),
            json!({}),
        )
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.body);
    let new_secret = rotated.body["secret"].as_str().unwrap();
    assert!(new_secret.starts_with("whsec_") && new_secret != created.secret);
    assert!(rotated.body["previous_secret_expires_at"].is_string());
    let after = app
        .get(&format!("/api/v1/subscriptions/{}", created.id))
        .await;
    let text = after.body.to_string();
    assert!(!text.contains(new_secret) && !text.contains(&created.secret));
    assert!(after.body.get("secret").is_none());
}

async fn subscriptions_are_patched_toggled_and_deleted(backend: Backend) {
    let app = spawn_app_with(backend, outbound_options()).await;
    let created = app.subscribe(TARGET, &["build.completed"]).await;
    let path = format!("/api/v1/subscriptions/{}", created.id);
    let patch = |body: Value| app.call(Method::PATCH, &path, Some(body));

    let patched = patch(json!({
        "name": "Renamed",
        "events": ["build.*", "release.completed"],
        "team_filter": "platform",
        "rate_limit": 120,
        "description": "now with a description"
    }))
    .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
    assert_eq!(patched.body["name"], "Renamed");
    assert_eq!(
        patched.body["events"],
        json!(["build.*", "release.completed"])
    );
    assert_eq!(patched.body["url"], TARGET, "untouched fields stay");
    assert!(patched.body.get("secret").is_none());
    let cleared = patch(json!({"description": null, "rate_limit": null})).await;
    assert_eq!(cleared.body["description"], Value::Null);
    assert_eq!(cleared.body["rate_limit"], Value::Null);
    assert_eq!(cleared.body["team_filter"], "platform");
    assert_eq!(app.get(&path).await.body, cleared.body);
    let refused = patch(json!({"url": "ftp://example.com/"})).await;
    refused.error(StatusCode::BAD_REQUEST, "invalid_request");
    assert_eq!(
        app.get(&path).await.body,
        cleared.body,
        "a refused patch stores nothing"
    );

    let toggle = format!("{path}/toggle");
    let off = app.post(&toggle, json!({})).await;
    assert_eq!(
        (off.status, &off.body["active"]),
        (StatusCode::OK, &json!(false))
    );
    assert_eq!(app.get(&path).await.body["active"], false);
    let on = app.post(&toggle, json!({})).await;
    assert_eq!(on.body["active"], true);

    let deleted = app.call(Method::DELETE, &path, None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    app.get(&path)
        .await
        .error(StatusCode::NOT_FOUND, "not_found");
    app.call(Method::DELETE, &path, None)
        .await
        .error(StatusCode::NOT_FOUND, "not_found");
    assert!(ids(&app.get("/api/v1/subscriptions").await.body).is_empty());
}

async fn lists_filter_by_active_state_and_event_type_with_wildcards(backend: Backend) {
    let app = spawn_app_with(backend, outbound_options()).await;
    let builds = app.subscribe(TARGET, &["build.*"]).await.id;
    let deployments = app.subscribe(TARGET, &["deployment.completed"]).await.id;
    let failures = app.subscribe(TARGET, &["build.failed"]).await.id;
    let toggled = app
        .post(
            &format!("/api/v1/subscriptions/{failures}/toggle"),
            json!({}),
        )
        .await;
    assert_eq!(toggled.body["active"], false);

    let list = |query: &'static str| {
        let app = &app;
        async move {
            let reply = app.get(&format!("/api/v1/subscriptions{query}")).await;
            assert_eq!(reply.status, StatusCode::OK, "{query}: {}", reply.body);
            assert_eq!(
                reply.body["count"].as_u64().unwrap() as usize,
                ids(&reply.body).len()
            );
            ids(&reply.body)
                .into_iter()
                .map(str::to_owned)
                .collect::<Vec<String>>()
        }
    };
    let (b, d, f) = (builds.as_str(), deployments.as_str(), failures.as_str());
    assert_eq!(list("").await, [b, d, f], "oldest first");
    assert_eq!(list("?active_only=true").await, [b, d]);
    assert_eq!(list("?event_type=build.failed").await, [b, f]);
    assert_eq!(list("?event_type=build.failed&active_only=true").await, [b]);
    assert_eq!(list("?event_type=build.started").await, [b]);
    assert_eq!(list("?event_type=deployment.completed").await, [d]);
    assert!(list("?event_type=release.created").await.is_empty());
    app.get("/api/v1/subscriptions?event_type=not%20a%20type")
        .await
        .error(StatusCode::BAD_REQUEST, "invalid_request");
}

async fn invalid_subscriptions_are_refused_and_nothing_is_stored(backend: Backend) {
    let app = spawn_app_with(backend, outbound_options()).await;
    let valid = json!({"name": "ok", "url": TARGET, "events": ["build.completed"]});
    let with = |field: &str, value: Value| {
        let mut body = valid.clone();
        body[field] = value;
        body
    };
    let mut without_name = valid.clone();
    without_name.as_object_mut().unwrap().remove("name");
    let cases = [
        ("no name", without_name),
        ("blank name", with("name", json!("   "))),
        ("not a URL", with("url", json!("not a url"))),
        ("not http(s)", with("url", json!("ftp://your-app.com/hook"))),
        (
            "credentials in URL",
            with("url", json!("https://u:p@your-app.com/")),
        ),
        ("no events", with("events", json!([]))),
        (
            "bad event type",
            with("events", json!(["build..completed"])),
        ),
        (
            "wildcard not at the end",
            with("events", json!(["*.completed"])),
        ),
        ("zero rate limit", with("rate_limit", json!(0))),
        ("negative rate limit", with("rate_limit", json!(-5))),
        ("unknown field", with("colour", json!("blue"))),
        (
            "events not a list",
            with("events", json!("build.completed")),
        ),
    ];
    for (case, body) in cases {
        assert_refused(&app.post("/api/v1/subscriptions", body).await, case);
    }
    let not_json = app
        .client
        .post(format!("{}/api/v1/subscriptions", app.base))
        .bearer_auth(&app.api_key)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), StatusCode::BAD_REQUEST);
    let listed = app.get("/api/v1/subscriptions").await;
    assert_eq!(listed.body["count"], 0, "{}", listed.body);
}

async fn unknown_subscription_ids_are_not_found(backend: Backend) {
    let app = spawn_app_with(backend, outbound_options()).await;
    let unknown = format!("sub_{}", ulid::Ulid::new().to_string().to_lowercase());
    let path = format!("/api/v1/subscriptions/{unknown}");
    let calls = [
        (Method::GET, path.clone(), None),
        (Method::PATCH, path.clone(), Some(json!({"name": "x"}))),
        (Method::DELETE, path.clone(), None),
        (Method::POST, format!("{path}/toggle"), None),
        (Method::POST, format!("{path}/rotate-secret"), None),
        (Method::POST, format!("{path}/test"), None),
    ];
    for (method, path, body) in calls {
        let reply = app.call(method.clone(), &path, body).await;
        reply.error(StatusCode::NOT_FOUND, "not_found");
    }
    app.get("/api/v1/subscriptions/not-an-id")
        .await
        .error(StatusCode::BAD_REQUEST, "invalid_request");
    let unauthenticated = app
        .client
        .get(format!("{}/api/v1/subscriptions", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status(), StatusCode::UNAUTHORIZED);
}
