//! Durability under a crash: `nexus serve` is killed with SIGKILL and restarted on the same
//! data directory. Under concurrent ingest load, every request it answered 2xx is there
//! exactly once and the store opens cleanly; deliveries waiting for a retry are sent.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use reqwest::StatusCode;
use tokio::process::Command;

use crate::helpers::{get_json, serve_command, start_server, temp_data_dir, unique, DEADLINE};
use crate::outbound_support::eventually;
use crate::receiver::{Answer, Receiver};

const CLIENTS: usize = 8;
/// Bounds the load: each client stops after this many requests even if the kill is late.
const MAX_REQUESTS_PER_CLIENT: usize = 2_000;
/// Acknowledged requests to wait for before pulling the plug.
const KILL_AFTER_ACKS: usize = 400;

fn serve(data_dir: &std::path::Path, key: &str) -> Command {
    let mut command = serve_command(data_dir);
    command.env("NEXUS_API_KEY", key).env("RUST_LOG", "error");
    command
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_request_survives_a_sigkill_exactly_once() {
    let (_dir, data_dir) = temp_data_dir();
    let key = unique("key");
    let agent = unique("crash");
    let (mut server, base) = start_server(serve(&data_dir, &key)).await;

    let client = reqwest::Client::new();
    let acked = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (client, acked, stop) = (client.clone(), acked.clone(), stop.clone());
            let url = format!("{base}/api/webhook/{agent}?source=load");
            tokio::spawn(async move {
                for n in 0..MAX_REQUESTS_PER_CLIENT {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let marker = format!("{c}-{n}");
                    let sent = client
                        .post(&url)
                        .header("content-type", "application/json")
                        .body(format!(r#"{{"marker":"{marker}"}}"#))
                        .send()
                        .await;
                    match sent {
                        Ok(response) if response.status() == StatusCode::OK => {
                            acked.lock().unwrap().push(marker)
                        }
                        // The server died mid-request: no answer, no promise.
                        _ => break,
                    }
                }
            })
        })
        .collect();

    let deadline = tokio::time::Instant::now() + DEADLINE;
    while acked.lock().unwrap().len() < KILL_AFTER_ACKS {
        assert!(
            tokio::time::Instant::now() < deadline,
            "load never reached the kill point"
        );
        tokio::task::yield_now().await;
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    server.start_kill().expect("SIGKILL");
    server.wait().await.unwrap();
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();

    let (_restarted, base) = start_server(serve(&data_dir, &key)).await;
    let mut stored: HashMap<String, usize> = HashMap::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("{base}/api/webhook/pending?agent={agent}&limit=1000");
        if let Some(cursor) = &cursor {
            url.push_str(&format!("&cursor={cursor}"));
        }
        let page = get_json(&client, &url, &key).await;
        for item in page["agents"][&agent].as_array().into_iter().flatten() {
            let marker = item["payload"]["marker"].as_str().unwrap().to_owned();
            *stored.entry(marker).or_default() += 1;
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }

    assert!(acked.len() >= KILL_AFTER_ACKS);
    for marker in &acked {
        assert_eq!(
            stored.get(marker),
            Some(&1),
            "acknowledged {marker} must be stored once"
        );
    }
    assert!(stored.values().all(|&n| n == 1), "nothing is stored twice");
}

/// The local delivery queue is kept by the stored deliveries: after a SIGKILL, the restarted
/// server sends every delivery that was waiting for a retry, and nothing settled again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_waiting_for_a_retry_are_sent_after_a_sigkill_and_restart() {
    const EVENTS: usize = 3;
    let (_dir, data_dir) = temp_data_dir();
    let key = unique("key");
    let outbound = |command: &mut Command| {
        command
            .env("NEXUS_ALLOW_PRIVATE_TARGETS", "true")
            .env("WEBHOOK_INITIAL_DELAY", "1s")
            .env("WEBHOOK_MAX_DELAY", "1s");
    };
    let receiver = Receiver::scripted((0..EVENTS).map(|_| Answer::status(500))).await;
    let mut first = serve(&data_dir, &key);
    outbound(&mut first);
    let (mut server, base) = start_server(first).await;
    let client = reqwest::Client::new();
    let created: serde_json::Value = client
        .post(format!("{base}/api/v1/subscriptions"))
        .bearer_auth(&key)
        .json(&serde_json::json!({"name": "restart", "url": receiver.url(), "events": ["*"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let subscription = created["id"].as_str().unwrap().to_owned();
    for n in 0..EVENTS {
        let published = client
            .post(format!("{base}/api/v1/events"))
            .bearer_auth(&key)
            .json(&serde_json::json!({"type": "build.completed", "source": "ci", "data": {"n": n}}))
            .send()
            .await
            .unwrap();
        assert_eq!(published.status(), StatusCode::ACCEPTED);
    }
    // Every first attempt failed: each delivery now waits for its retry, a second away.
    receiver.wait_for(EVENTS).await;
    server.start_kill().expect("SIGKILL");
    server.wait().await.unwrap();

    let mut second = serve(&data_dir, &key);
    outbound(&mut second);
    let (_restarted, base) = start_server(second).await;
    let arrived = receiver.wait_for(2 * EVENTS).await;

    let failed: Vec<&str> = arrived[..EVENTS]
        .iter()
        .map(|r| r.header("x-nexus-delivery"))
        .collect();
    let mut retried: Vec<&str> = arrived[EVENTS..]
        .iter()
        .map(|r| r.header("x-nexus-delivery"))
        .collect();
    let mut expected = failed.clone();
    expected.sort_unstable();
    retried.sort_unstable();
    assert_eq!(retried, expected, "each waiting delivery is sent once more");
    let url = format!("{base}/api/v1/deliveries?subscription_id={subscription}&status=success");
    eventually("the retried deliveries recorded as delivered", || async {
        let listed = get_json(&client, &url, &key).await;
        (listed["deliveries"].as_array().map(Vec::len) == Some(EVENTS)).then_some(())
    })
    .await;
    assert_eq!(
        receiver.requests().len(),
        2 * EVENTS,
        "nothing is sent a third time"
    );
}
