//! Ingest benchmark: durable `POST /api/webhook/{agentId}` on `nexus serve` (SQLite) against
//! a bare axum handler that answers 200 with no work, driven by the same keep-alive client
//! at the same concurrency, in one run on one machine. Prints a table.
//!
//! ```text
//! cargo bench --bench ingest                                  # 64 clients, 10 s per target
//! NEXUS_BENCH_CONCURRENCY=16 NEXUS_BENCH_SECONDS=5 cargo bench --bench ingest
//! NEXUS_BENCH_BINARY=path/to/nexus cargo bench --bench ingest     # another build
//! ```
//!
//! Client and servers share the machine's cores, so compare figures within one run only.
//! Every 2xx of the ingest target is durable: the server answers after the group commit
//! that holds the item has been fsynced (`synchronous=FULL`), never before.

use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use cpu::CpuMeter;

#[path = "support/cpu.rs"]
mod cpu;

const BODY_BYTES: usize = 1024;

struct Measurement {
    requests: usize,
    errors: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
    /// CPU time of the server and of the bench's client over the measured run.
    cpu: (Duration, Duration),
}

impl Measurement {
    fn rate(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    /// Microseconds of CPU per request: the server's and the client's.
    fn cpu_us(&self) -> (f64, f64) {
        let per = |d: Duration| d.as_secs_f64() * 1e6 / self.requests.max(1) as f64;
        (per(self.cpu.0), per(self.cpu.1))
    }

    fn percentile(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let index =
            ((self.latencies.len() as f64 * p).ceil() as usize).clamp(1, self.latencies.len());
        self.latencies[index - 1]
    }
}

/// A ~1 KiB JSON body like a provider's event.
fn body() -> String {
    let head = r#"{"event":"transfer.completed","transfer_id":12345,"file_id":67890,"status":"COMPLETED","name":""#;
    let tail = r#""}"#;
    let pad = BODY_BYTES - head.len() - tail.len();
    format!("{head}{}{tail}", "m".repeat(pad))
}

/// Drives `url` (served by process `server`) with `concurrency` keep-alive clients for
/// `duration` (after a warm-up).
async fn drive(url: &str, server: u32, concurrency: usize, duration: Duration) -> Measurement {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()
        .unwrap();
    let body = body();
    let run = |for_how_long: Duration| {
        let tasks: Vec<_> = (0..concurrency)
            .map(|_| {
                let client = client.clone();
                let url = url.to_owned();
                let body = body.clone();
                tokio::spawn(async move {
                    let mut latencies = Vec::new();
                    let mut errors = 0;
                    let end = Instant::now() + for_how_long;
                    while Instant::now() < end {
                        let start = Instant::now();
                        let response = client
                            .post(&url)
                            .header("content-type", "application/json")
                            .body(body.clone())
                            .send()
                            .await;
                        match response {
                            Ok(r) if r.status().is_success() => {
                                let _ = r.bytes().await;
                                latencies.push(start.elapsed());
                            }
                            _ => errors += 1,
                        }
                    }
                    (latencies, errors)
                })
            })
            .collect();
        async move {
            let cpu = CpuMeter::start(server, std::process::id());
            let started = Instant::now();
            let mut latencies = Vec::new();
            let mut errors = 0;
            for task in tasks {
                let (mut l, e) = task.await.unwrap();
                latencies.append(&mut l);
                errors += e;
            }
            let elapsed = started.elapsed();
            let cpu = cpu.stop();
            latencies.sort_unstable();
            Measurement {
                requests: latencies.len(),
                errors,
                elapsed,
                latencies,
                cpu,
            }
        }
    };
    run(duration / 5).await; // warm-up: connections, caches, SQLite pages
    run(duration).await
}

async fn start(mut command: Command) -> (Child, String) {
    command.stdout(Stdio::piped()).kill_on_drop(true);
    let mut child = command.spawn().expect("starting a bench server");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    while let Some(line) = lines.next_line().await.unwrap() {
        if let Some(url) = line.strip_prefix("nexus listening on ") {
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            return (child, url.to_owned());
        }
    }
    panic!("bench server exited before listening");
}

/// The bare handler runs in its own process, like `nexus serve`, so both pay the same
/// process and scheduling costs.
async fn bare_server() {
    let app = axum::Router::new().route(
        "/api/webhook/{agent_id}",
        axum::routing::post(|| async { axum::http::StatusCode::OK }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    println!(
        "nexus listening on http://{}",
        listener.local_addr().unwrap()
    );
    axum::serve(listener, app).await.unwrap();
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn row(name: &str, m: &Measurement) -> String {
    format!(
        "| {name:<30} | {:>8.0} | {:>6.2} | {:>6.2} | {:>6} | {:>10.1} | {:>10.1} |",
        m.rate(),
        m.percentile(0.50).as_secs_f64() * 1e3,
        m.percentile(0.99).as_secs_f64() * 1e3,
        m.errors,
        m.cpu_us().0,
        m.cpu_us().1,
    )
}

#[tokio::main]
async fn main() {
    if std::env::args().any(|a| a == "--bare-server") {
        return bare_server().await;
    }
    // `cargo bench` passes `--bench`; anything else (e.g. a test filter) is ignored.
    let concurrency = env_or("NEXUS_BENCH_CONCURRENCY", 64usize);
    let seconds = env_or("NEXUS_BENCH_SECONDS", 10u64);
    let duration = Duration::from_secs(seconds);

    let data_dir = tempfile::tempdir().unwrap();
    // NEXUS_BENCH_BINARY: another build of nexus to run, e.g. one with frame pointers for
    // a profiler.
    let binary = std::env::var("NEXUS_BENCH_BINARY")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_nexus").to_owned());
    let mut nexus = Command::new(binary);
    nexus
        .args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir.path())
        .env("NEXUS_API_KEY", "bench")
        .env("RUST_LOG", "warn");
    let mut bare = Command::new(std::env::current_exe().unwrap());
    bare.arg("--bare-server");

    let (bare_child, bare_url) = start(bare).await;
    let bare_result = drive(
        &format!("{bare_url}/api/webhook/bench?source=bench"),
        bare_child.id().unwrap(),
        concurrency,
        duration,
    )
    .await;
    drop(bare_child);
    let (nexus_child, nexus_url) = start(nexus).await;
    let ingest = drive(
        &format!("{nexus_url}/api/webhook/bench?source=bench"),
        nexus_child.id().unwrap(),
        concurrency,
        duration,
    )
    .await;

    println!();
    println!(
        "ingest benchmark: {concurrency} keep-alive clients, {BODY_BYTES} B JSON body, {seconds} s per target, {} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!();
    println!("| target                         |    req/s | p50 ms | p99 ms | errors | server CPU | client CPU |");
    println!("|--------------------------------|---------:|-------:|-------:|-------:|-----------:|-----------:|");
    println!("{}", row("bare axum handler (ceiling)", &bare_result));
    println!("{}", row("nexus ingest (SQLite, durable)", &ingest));
    println!();
    println!("CPU: microseconds of CPU time per request, of the server process and of the bench's client");
    println!();
    let ratio = ingest.rate() / bare_result.rate();
    let p99 = ingest.percentile(0.99);
    println!(
        "ingest / bare throughput: {:.0}% (target >= 50%); ingest p99 {:.2} ms (target < 10 ms): {}",
        ratio * 100.0,
        p99.as_secs_f64() * 1e3,
        if ratio >= 0.5 && p99 < Duration::from_millis(10) { "MET" } else { "NOT MET" }
    );
}
