//! The loopback receiver, run in its own process (`--receiver`): answers 200 to every POST
//! and logs each request's publish-to-arrival latency (from `data.published_at_us`);
//! `POST /count` reads how many arrived, `POST /stats` takes the log and clears it.

use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use super::now_us;

/// The receiver process: records each request's publish-to-arrival latency.
pub async fn serve() {
    #[derive(Default)]
    struct Log {
        latencies_us: Vec<u64>,
        first_us: u64,
        last_us: u64,
    }
    let log = Arc::new(Mutex::new(Log::default()));
    let record = {
        let log = log.clone();
        move |body: axum::body::Bytes| {
            let log = log.clone();
            async move {
                let at = now_us();
                let sent: u64 = serde_json::from_slice::<Value>(&body)
                    .ok()
                    .and_then(|v| v["data"]["published_at_us"].as_u64())
                    .unwrap_or(at);
                let mut log = log.lock().unwrap();
                if log.latencies_us.is_empty() {
                    log.first_us = at;
                }
                log.last_us = at;
                log.latencies_us.push(at.saturating_sub(sent));
                axum::http::StatusCode::OK
            }
        }
    };
    let stats = {
        let log = log.clone();
        move || {
            let log = log.clone();
            async move {
                let mut log = log.lock().unwrap();
                let taken = std::mem::take(&mut *log);
                axum::Json(json!({"latencies_us": taken.latencies_us,
                                  "first_us": taken.first_us, "last_us": taken.last_us}))
            }
        }
    };
    let count = move || {
        let log = log.clone();
        async move { log.lock().unwrap().latencies_us.len().to_string() }
    };
    let app = axum::Router::new()
        .route("/stats", axum::routing::post(stats))
        .route("/count", axum::routing::post(count))
        .fallback(axum::routing::post(record));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    println!(
        "nexus listening on http://{}",
        listener.local_addr().unwrap()
    );
    axum::serve(listener, app).await.unwrap();
}
