//! `POST /api/webhook/{agentId}`: what is stored, what is refused, and that a refusal
//! stores nothing.

use reqwest::StatusCode;

use crate::helpers::{behaviour, spawn_app, spawn_app_with, unique, Backend, Options};

behaviour!(
    a_json_webhook_is_stored_as_is_with_its_metadata,
    a_missing_source_is_stored_as_default,
    a_form_body_is_stored_raw_as_text,
    a_body_that_declares_json_but_is_not_is_refused,
    invalid_agent_ids_and_sources_are_refused,
    a_configured_source_secret_is_required,
    an_agent_secret_covers_every_source_of_the_agent,
    an_agent_without_secrets_is_open,
    a_body_over_the_limit_is_refused_whole,
    a_redelivery_is_stored_once_and_answers_the_first_id,
    the_same_delivery_id_from_another_source_is_a_new_item,
    unknown_routes_and_wrong_methods_answer_json_errors,
);

async fn a_json_webhook_is_stored_as_is_with_its_metadata(backend: Backend) {
    let app = spawn_app(backend).await;
    let agent = unique("flickclaw");
    // Key order, spacing and number forms must survive: the payload is stored as-is.
    let body =
        r#"{"transfer_id": 12345, "size":5000000000, "ratio":1.50, "name":"Movie.2024.mkv"}"#;

    let receipt = app
        .webhook(&agent, Some("putio"))
        .json(body)
        .header("User-Agent", "putio-callback/1.0")
        .header("Authorization", "Bearer provider-token")
        .send()
        .await;

    assert_eq!(receipt.status, StatusCode::OK, "{}", receipt.body);
    let id = receipt.body["id"].as_str().unwrap();
    assert!(id.starts_with(&format!("{agent}:")), "{id}");
    assert_eq!(receipt.body["duplicate"], false);
    let items = app.pending_items(&agent).await;
    assert_eq!(items.len(), 1);
    let item = &items[0];
    assert_eq!(item["id"], id);
    assert_eq!(item["agent_id"], agent.as_str());
    assert_eq!(item["source"], "putio");
    assert_eq!(item["received_at"], receipt.body["received_at"]);
    assert_eq!(item["content_type"], "application/json");
    assert_eq!(item["payload_encoding"], "json");
    let raw = app.pending_text(&format!("agent={agent}")).await;
    assert!(raw.contains(body), "payload not byte-for-byte in {raw}");
    assert_eq!(item["headers"]["user-agent"], "putio-callback/1.0");
    assert_eq!(item["headers"]["authorization"], "[redacted]");
    assert!(!item.to_string().contains("provider-token"));
}

async fn a_missing_source_is_stored_as_default(backend: Backend) {
    let app = spawn_app(backend).await;
    let agent = unique("main");

    let receipt = app
        .webhook(&agent, None)
        .json(r#"{"ok":true}"#)
        .send()
        .await;

    assert_eq!(receipt.status, StatusCode::OK);
    let items = app.pending_items(&agent).await;
    assert_eq!(items[0]["source"], "default");
}

async fn a_form_body_is_stored_raw_as_text(backend: Backend) {
    let app = spawn_app(backend).await;
    let agent = unique("main");
    let form = "token=x&team_id=T1&text=hello+world&payload=%7B%22a%22%3A1%7D";

    let receipt = app
        .webhook(&agent, Some("slack"))
        .body("application/x-www-form-urlencoded", form)
        .send()
        .await;

    assert_eq!(receipt.status, StatusCode::OK);
    let items = app.pending_items(&agent).await;
    assert_eq!(items[0]["payload_encoding"], "text");
    assert_eq!(items[0]["payload"], form);
    assert_eq!(
        items[0]["content_type"],
        "application/x-www-form-urlencoded"
    );
}

async fn a_body_that_declares_json_but_is_not_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let agent = unique("main");

    let reply = app
        .webhook(&agent, Some("github"))
        .json("{not json")
        .send()
        .await;

    let message = reply.error(StatusCode::BAD_REQUEST, "invalid_json");
    assert!(message.contains("line 1"), "{message}");
    assert!(app.pending_items(&agent).await.is_empty());
}

async fn invalid_agent_ids_and_sources_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let agent = unique("main");

    for (agent_id, source) in [
        ("Upper", Some("github")),
        ("has.dot", None),
        (&"x".repeat(65), None),
        (agent.as_str(), Some("Git Hub")),
        (agent.as_str(), Some("")),
    ] {
        let reply = app.webhook(agent_id, source).json("{}").send().await;
        let message = reply.error(StatusCode::BAD_REQUEST, "invalid_request");
        assert!(
            message.contains("agentId") || message.contains("source"),
            "{message}"
        );
    }
    assert!(app.pending_items(&agent).await.is_empty());
}

async fn a_configured_source_secret_is_required(backend: Backend) {
    let agent = unique("flickclaw").replace('-', "_");
    let secret_name = format!("WEBHOOK_SECRET_{agent}_putio");
    let app = spawn_app_with(backend, Options::default().secret(&secret_name, "abc123")).await;

    let missing = app.webhook(&agent, Some("putio")).json("{}").send().await;
    let wrong = app
        .webhook(&agent, Some("putio"))
        .json("{}")
        .header("X-Webhook-Secret", "abc124")
        .send()
        .await;
    let right = app
        .webhook(&agent, Some("putio"))
        .json(r#"{"n":1}"#)
        .header("X-Webhook-Secret", "abc123")
        .send()
        .await;

    assert!(missing
        .error(StatusCode::UNAUTHORIZED, "unauthorized")
        .contains("missing"));
    let message = wrong.error(StatusCode::UNAUTHORIZED, "unauthorized");
    assert!(!message.contains("abc123") && !message.contains("abc124"));
    assert_eq!(right.status, StatusCode::OK);
    let items = app.pending_items(&agent).await;
    assert_eq!(items.len(), 1, "only the authorised request is stored");
    assert_eq!(items[0]["headers"]["x-webhook-secret"], "[redacted]");
    assert!(!items[0].to_string().contains("abc123"));
}

async fn an_agent_secret_covers_every_source_of_the_agent(backend: Backend) {
    let agent = unique("stewardclaw").replace('-', "_");
    let app = spawn_app_with(
        backend,
        Options::default().secret(format!("WEBHOOK_SECRET_{agent}"), "agent-wide"),
    )
    .await;

    let refused = app.webhook(&agent, Some("github")).json("{}").send().await;
    let accepted = app
        .webhook(&agent, None)
        .json("{}")
        .header("X-Webhook-Secret", "agent-wide")
        .send()
        .await;

    refused.error(StatusCode::UNAUTHORIZED, "unauthorized");
    assert_eq!(accepted.status, StatusCode::OK);
    assert_eq!(app.pending_items(&agent).await.len(), 1);
}

async fn an_agent_without_secrets_is_open(backend: Backend) {
    let guarded = unique("guarded").replace('-', "_");
    let app = spawn_app_with(
        backend,
        Options::default().secret(format!("WEBHOOK_SECRET_{guarded}"), "s"),
    )
    .await;
    let open = unique("open");

    let reply = app.webhook(&open, Some("internal")).json("{}").send().await;

    assert_eq!(reply.status, StatusCode::OK);
}

async fn a_body_over_the_limit_is_refused_whole(backend: Backend) {
    let limit = 4096;
    let app = spawn_app_with(
        backend,
        Options {
            max_body_bytes: Some(limit),
            ..Options::default()
        },
    )
    .await;
    let agent = unique("main");
    let fits = "a".repeat(limit);
    let too_big = "a".repeat(limit + 1);

    let refused = app
        .webhook(&agent, None)
        .body("text/plain", too_big)
        .send()
        .await;
    let accepted = app
        .webhook(&agent, None)
        .body("text/plain", fits.clone())
        .send()
        .await;

    assert!(refused
        .error(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
        .contains("4096"));
    assert_eq!(accepted.status, StatusCode::OK);
    let items = app.pending_items(&agent).await;
    assert_eq!(items.len(), 1);
    assert_eq!(
        items[0]["payload"].as_str().unwrap().len(),
        limit,
        "never truncated"
    );
}

async fn a_redelivery_is_stored_once_and_answers_the_first_id(backend: Backend) {
    let app = spawn_app(backend).await;
    let agent = unique("main");

    for header in [
        "X-GitHub-Delivery",
        "webhook-id",
        "X-Shopify-Webhook-Id",
        "Idempotency-Key",
    ] {
        let delivery = unique("delivery");
        let first = app
            .webhook(&agent, Some("github"))
            .json(r#"{"n":1}"#)
            .header(header, &delivery)
            .send()
            .await;
        let again = app
            .webhook(&agent, Some("github"))
            .json(r#"{"n":1}"#)
            .header(header, &delivery)
            .send()
            .await;

        assert_eq!(first.status, StatusCode::OK);
        assert_eq!(again.status, StatusCode::OK, "{header}");
        assert_eq!(again.body["id"], first.body["id"], "{header}");
        assert_eq!(again.body["received_at"], first.body["received_at"]);
        assert_eq!(again.body["duplicate"], true);
    }
    assert_eq!(app.pending_items(&agent).await.len(), 4);
}

async fn the_same_delivery_id_from_another_source_is_a_new_item(backend: Backend) {
    let app = spawn_app(backend).await;
    let agent = unique("main");
    let delivery = unique("delivery");

    let github = app
        .webhook(&agent, Some("github"))
        .json("{}")
        .header("Idempotency-Key", &delivery)
        .send()
        .await;
    let stripe = app
        .webhook(&agent, Some("stripe"))
        .json("{}")
        .header("Idempotency-Key", &delivery)
        .send()
        .await;

    assert_ne!(github.body["id"], stripe.body["id"]);
    assert_eq!(app.pending_items(&agent).await.len(), 2);
}

/// Lambdas cache secrets briefly; a rotation must take effect within that time, no deploy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_a_rotated_secret_takes_effect_after_the_cache_ttl() {
    if crate::helpers::aws_endpoint().is_none() {
        return;
    }
    let agent = unique("rotating").replace('-', "_");
    let name = format!("WEBHOOK_SECRET_{agent}");
    let app = spawn_app_with(
        Backend::Aws,
        Options {
            secrets_cache_ttl: Some(std::time::Duration::from_millis(200)),
            ..Options::default().secret(&name, "before")
        },
    )
    .await;
    let send = |secret: &'static str| {
        app.webhook(&agent, None)
            .json("{}")
            .header("X-Webhook-Secret", secret)
            .send()
    };
    assert_eq!(send("before").await.status, StatusCode::OK);

    app.aws.as_ref().unwrap().put_secret(&name, "after").await;

    let deadline = tokio::time::Instant::now() + crate::helpers::DEADLINE;
    while send("after").await.status != StatusCode::OK {
        assert!(
            tokio::time::Instant::now() < deadline,
            "rotation never took effect"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(send("before").await.status, StatusCode::UNAUTHORIZED);
}

async fn unknown_routes_and_wrong_methods_answer_json_errors(backend: Backend) {
    let app = spawn_app(backend).await;

    let missing = app
        .client
        .get(format!("{}/nope", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let body: serde_json::Value = missing.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");

    let wrong = app
        .client
        .put(format!("{}/api/webhook/pending", app.base))
        .bearer_auth(&app.api_key)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::METHOD_NOT_ALLOWED);
    let body: serde_json::Value = wrong.json().await.unwrap();
    assert_eq!(body["error"]["code"], "method_not_allowed");
}
