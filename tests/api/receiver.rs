//! A webhook receiver for outbound tests: a real axum server on 127.0.0.1:0 that records
//! every request (headers, raw body, arrival time) and answers from a script, one scripted
//! reply per request in order (status, headers, delay), then 200 once the script runs out.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use tokio::sync::watch;

use crate::helpers::DEADLINE;

/// One scripted answer.
#[derive(Debug, Clone)]
pub struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    delay: Duration,
    body: String,
}

impl Answer {
    /// Answers with `status` and a short body saying so.
    pub fn status(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            delay: Duration::ZERO,
            body: format!("scripted {status}"),
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Waits this long before answering (to make the sender time out).
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    pub fn body(mut self, body: impl Into<String>) -> Self {
        self.body = body.into();
        self
    }
}

/// A request as it arrived.
#[derive(Debug, Clone)]
pub struct Captured {
    pub method: Method,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// When it arrived, on this process's monotonic clock.
    pub at: Instant,
}

impl Captured {
    /// A header's value as text; panics when absent, naming it.
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header in {:?}", self.headers))
            .to_str()
            .expect("a text header")
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

#[derive(Default)]
struct Shared {
    script: Mutex<VecDeque<Answer>>,
    captured: Mutex<Vec<Captured>>,
}

/// The running receiver; stops when dropped.
pub struct Receiver {
    base: String,
    shared: Arc<Shared>,
    count: watch::Receiver<usize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Clone)]
struct AppState {
    shared: Arc<Shared>,
    count: Arc<watch::Sender<usize>>,
}

async fn receive(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let at = Instant::now();
    let answer = state.shared.script.lock().unwrap().pop_front();
    {
        let mut captured = state.shared.captured.lock().unwrap();
        captured.push(Captured {
            method,
            path: uri.path().to_owned(),
            headers,
            body,
            at,
        });
        state.count.send_replace(captured.len());
    }
    let answer = answer.unwrap_or_else(|| Answer::status(200).body("ok"));
    if !answer.delay.is_zero() {
        tokio::time::sleep(answer.delay).await;
    }
    let mut response = (
        StatusCode::from_u16(answer.status).expect("a valid scripted status"),
        answer.body,
    )
        .into_response();
    for (name, value) in answer.headers {
        response.headers_mut().insert(
            axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
    }
    response
}

impl Receiver {
    /// Starts a receiver that answers 200 to everything until scripted otherwise.
    pub async fn start() -> Self {
        let shared = Arc::new(Shared::default());
        let (sender, count) = watch::channel(0);
        let state = AppState {
            shared: shared.clone(),
            count: Arc::new(sender),
        };
        let app = axum::Router::new().fallback(receive).with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            base,
            shared,
            count,
            task,
        }
    }

    /// Starts a receiver with a script already in place.
    pub async fn scripted(answers: impl IntoIterator<Item = Answer>) -> Self {
        let receiver = Self::start().await;
        receiver.script(answers);
        receiver
    }

    /// The URL subscriptions point at.
    pub fn url(&self) -> String {
        format!("{}/hooks/nexus", self.base)
    }

    /// A URL of its own per subscription, to tell them apart in [`requests`](Self::requests).
    pub fn url_for(&self, name: &str) -> String {
        format!("{}/hooks/{name}", self.base)
    }

    /// Requests that arrived at [`url_for(name)`](Self::url_for).
    pub fn requests_for(&self, name: &str) -> Vec<Captured> {
        let path = format!("/hooks/{name}");
        self.requests()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }

    /// Appends answers to the script.
    pub fn script(&self, answers: impl IntoIterator<Item = Answer>) {
        self.shared.script.lock().unwrap().extend(answers);
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Captured> {
        self.shared.captured.lock().unwrap().clone()
    }

    /// Waits (at most [`DEADLINE`]) until at least `count` requests have arrived and
    /// returns all of them.
    pub async fn wait_for(&self, count: usize) -> Vec<Captured> {
        let mut watching = self.count.clone();
        let arrived = tokio::time::timeout(DEADLINE, watching.wait_for(|n| *n >= count)).await;
        let requests = self.requests();
        assert!(
            arrived.is_ok(),
            "expected {count} requests at {} within {DEADLINE:?}, got {}",
            self.base,
            requests.len()
        );
        requests
    }
}

/// A loopback URL nothing listens on (a port the OS just gave out and took back).
pub async fn refused_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{address}/hooks/nexus")
}

/// A bare TCP listener on 127.0.0.1 that only counts the connections made to it: proof
/// that a refused target was never even connected to (TLS or not).
pub struct ConnectionCounter {
    pub port: u16,
    accepted: Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl ConnectionCounter {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = accepted.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                drop(stream);
            }
        });
        Self {
            port,
            accepted,
            task,
        }
    }

    pub fn accepted(&self) -> usize {
        self.accepted.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for ConnectionCounter {
    fn drop(&mut self) {
        self.task.abort();
    }
}
