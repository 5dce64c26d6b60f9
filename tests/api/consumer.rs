//! The consumer API: listing pending items page by page, marking them processed.

use std::collections::HashSet;

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{behaviour, spawn_app, spawn_app_with, unique, Backend, Options, TestApp};

behaviour!(
    the_consumer_api_requires_the_api_key,
    pending_items_are_grouped_by_agent_oldest_first,
    pagination_walks_every_item_exactly_once,
    pages_stop_at_the_byte_budget_and_continue_by_cursor,
    bad_cursors_and_limits_are_refused,
    deleting_marks_items_processed_at_once_and_is_idempotent,
    unknown_and_malformed_ids_are_reported_not_failed,
);

/// Posts `count` JSON webhooks to `agent` in order; returns their ids.
async fn post_many(app: &TestApp, agent: &str, count: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for n in 0..count {
        let reply = app
            .webhook(agent, Some("test"))
            .json(&format!(r#"{{"n":{n}}}"#))
            .send()
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        ids.push(reply.body["id"].as_str().unwrap().to_owned());
    }
    ids
}

fn ids_of(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|item| item["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn the_consumer_api_requires_the_api_key(backend: Backend) {
    let app = spawn_app(backend).await;

    let missing = app.pending_as(None, "").await;
    let wrong = app.pending_as(Some("not-the-key"), "").await;
    let right = app.pending_as(Some(&app.api_key), "").await;

    missing.error(StatusCode::UNAUTHORIZED, "unauthorized");
    let message = wrong.error(StatusCode::UNAUTHORIZED, "unauthorized");
    assert!(!message.contains(&app.api_key));
    assert_eq!(right.status, StatusCode::OK);
    let delete = app
        .client
        .delete(format!("{}/api/webhook/items", app.base))
        .json(&serde_json::json!({"ids": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(delete.status(), StatusCode::UNAUTHORIZED);
}

async fn pending_items_are_grouped_by_agent_oldest_first(backend: Backend) {
    let app = spawn_app(backend).await;
    let first = unique("alpha");
    let second = unique("beta");
    let first_ids = post_many(&app, &first, 2).await;
    let second_ids = post_many(&app, &second, 1).await;
    let third = post_many(&app, &first, 1).await;

    // No agent filter: everyone's pending items (other tests' too, on a shared server),
    // so walk all pages and look at ours.
    let mut seen: Vec<(String, String)> = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let query = match &cursor {
            Some(cursor) => format!("limit=1000&cursor={cursor}"),
            None => "limit=1000".to_owned(),
        };
        let reply = app.pending(&query).await;
        assert_eq!(reply.status, StatusCode::OK);
        for (agent, items) in reply.body["agents"].as_object().unwrap() {
            for item in items.as_array().unwrap() {
                assert_eq!(item["agent_id"], agent.as_str());
                seen.push((agent.clone(), item["id"].as_str().unwrap().to_owned()));
            }
        }
        match reply.body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    let ours = |agent: &str| -> Vec<String> {
        seen.iter()
            .filter(|(a, _)| a == agent)
            .map(|(_, id)| id.clone())
            .collect()
    };
    assert_eq!(ours(&first), [first_ids, third].concat());
    assert_eq!(ours(&second), second_ids);
}

async fn pagination_walks_every_item_exactly_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let agent = unique("pager");
    let posted = post_many(&app, &agent, 7).await;

    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut query = format!("agent={agent}&limit=3");
        if let Some(cursor) = &cursor {
            query.push_str(&format!("&cursor={cursor}"));
        }
        let reply = app.pending(&query).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        let items = reply.body["agents"][&agent]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(reply.body["count"], items.len());
        pages.push(ids_of(&items));
        match reply.body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }

    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [3, 3, 1]);
    assert_eq!(pages.concat(), posted, "oldest first, no gaps, no repeats");
}

async fn pages_stop_at_the_byte_budget_and_continue_by_cursor(backend: Backend) {
    let app = spawn_app_with(
        backend,
        Options {
            max_body_bytes: Some(2048),
            pending_max_bytes: Some(4096),
            ..Options::default()
        },
    )
    .await;
    let agent = unique("big");
    let mut posted = Vec::new();
    for n in 0..5 {
        let body = format!(r#"{{"n":{n},"pad":"{}"}}"#, "x".repeat(1500));
        let reply = app.webhook(&agent, None).json(&body).send().await;
        posted.push(reply.body["id"].as_str().unwrap().to_owned());
    }

    let first = app.pending(&format!("agent={agent}&limit=100")).await;
    let first_page = first.body["agents"][&agent].as_array().unwrap().len();
    assert!(
        (1..5).contains(&first_page),
        "cut short by bytes: {first_page}"
    );
    assert!(first.body["next_cursor"].is_string());
    assert_eq!(ids_of(&app.pending_items(&agent).await), posted);
}

async fn bad_cursors_and_limits_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;

    for query in [
        "cursor=bm9wZQ",
        "cursor=%%%",
        "limit=0",
        "limit=100000",
        "limit=ten",
        "agent=Bad!",
    ] {
        let reply = app.pending(query).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{query}: {}",
            reply.body
        );
        assert_eq!(reply.body["error"]["code"], "invalid_request", "{query}");
    }
}

async fn deleting_marks_items_processed_at_once_and_is_idempotent(backend: Backend) {
    let app = spawn_app(backend).await;
    let agent = unique("worker");
    let ids = post_many(&app, &agent, 3).await;
    let done: Vec<&str> = ids[..2].iter().map(String::as_str).collect();

    let first = app.delete_items(&done).await;
    let again = app.delete_items(&done).await;

    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    assert_eq!(first.body["processed"], serde_json::json!(done));
    assert_eq!(first.body["already_processed"], serde_json::json!([]));
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.body["processed"], serde_json::json!([]));
    assert_eq!(again.body["already_processed"], serde_json::json!(done));
    assert_eq!(ids_of(&app.pending_items(&agent).await), [ids[2].clone()]);
}

async fn unknown_and_malformed_ids_are_reported_not_failed(backend: Backend) {
    let app = spawn_app(backend).await;
    let agent = unique("worker");
    let ids = post_many(&app, &agent, 1).await;
    let never_stored = format!("{agent}:1795408056465_01M83AHM4HZZWA11YDTYTZ43HS");

    let reply = app
        .delete_items(&[&ids[0], &never_stored, "not-an-id", &ids[0]])
        .await;

    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["processed"], serde_json::json!([ids[0]]));
    let unknown: HashSet<&str> = reply.body["unknown"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(unknown, HashSet::from([never_stored.as_str(), "not-an-id"]));
    assert!(app.pending_items(&agent).await.is_empty());

    let not_a_list = app
        .client
        .delete(format!("{}/api/webhook/items", app.base))
        .bearer_auth(&app.api_key)
        .json(&serde_json::json!({"ids": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(not_a_list.status(), StatusCode::UNPROCESSABLE_ENTITY);
}
