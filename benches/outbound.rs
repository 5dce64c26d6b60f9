//! Outbound benchmark: events published to `nexus serve` (SQLite, release build) and
//! delivered to 1 and then 50 subscriptions pointing at a loopback receiver, against the
//! ceiling: the same receiver driven directly by a plain HTTP client at the delivery
//! concurrency. Prints a table.
//!
//! ```text
//! cargo bench --bench outbound
//! NEXUS_BENCH_DELIVERIES=20000 NEXUS_BENCH_SECONDS=5 cargo bench --bench outbound
//! NEXUS_BENCH_BINARY=path/to/nexus cargo bench --bench outbound    # another build
//! ```
//!
//! The receiver (a bare axum handler answering 200, in its own process) notes when each
//! request arrives; every event carries the wall-clock time it was published at
//! (`data.published_at_us`), so publish-to-delivery latency is measured end to end, on one
//! machine's clock. Client, server and receiver share the machine's cores: compare figures
//! within one run only.

use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::Semaphore;

use cpu::CpuMeter;
use report::Row;

#[path = "support/cpu.rs"]
mod cpu;
#[path = "outbound/receiver.rs"]
mod receiver;
#[path = "outbound/report.rs"]
mod report;

/// `NEXUS_DELIVERY_CONCURRENCY` of the server, and the ceiling's client concurrency.
const CONCURRENCY: usize = 64;
/// Concurrent publishers in the saturating runs.
const PUBLISHERS: usize = 16;
const API_KEY: &str = "bench";

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn start(mut command: Command) -> (Child, String) {
    command.stdout(Stdio::piped()).kill_on_drop(true);
    let mut child = command.spawn().expect("starting a bench process");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    while let Some(line) = lines.next_line().await.unwrap() {
        if let Some(url) = line.strip_prefix("nexus listening on ") {
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            return (child, url.to_owned());
        }
    }
    panic!("bench process exited before listening");
}

/// How events reach subscribers in one scenario.
#[derive(Clone, Copy)]
struct FanOut {
    subscriptions: usize,
    /// Events per publish request.
    batch: usize,
}

impl FanOut {
    /// `50` or `1x100` (subscriptions x events per request).
    fn parse(spec: &str) -> Self {
        let spec = spec.trim();
        let (subscriptions, batch) = spec.split_once('x').unwrap_or((spec, "1"));
        let number = |n: &str| {
            n.parse()
                .expect("NEXUS_BENCH_SUBSCRIPTIONS: e.g. 1,1x100,50")
        };
        Self {
            subscriptions: number(subscriptions),
            batch: number(batch).clamp(1, 100),
        }
    }
}

impl std::fmt::Display for FanOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} sub(s)", self.subscriptions)?;
        if self.batch > 1 {
            write!(f, ", {} per publish", self.batch)?;
        }
        Ok(())
    }
}

struct Bench {
    client: reqwest::Client,
    nexus: String,
    receiver: String,
    /// Process ids of nexus and of the receiver, for their CPU time.
    pids: (u32, u32),
}

impl Bench {
    /// Requests the receiver has logged since the last [`take_log`](Self::take_log).
    async fn arrived(&self) -> usize {
        let url = format!("{}/count", self.receiver);
        let reply = self.client.post(url).send().await.unwrap();
        reply.text().await.unwrap().parse().unwrap()
    }

    /// Takes (and clears) the receiver's log: latencies sorted, and when the last arrived.
    async fn take_log(&self) -> (Vec<u64>, u64) {
        let url = format!("{}/stats", self.receiver);
        let log: Value = self
            .client
            .post(url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let mut latencies: Vec<u64> = serde_json::from_value(log["latencies_us"].clone()).unwrap();
        latencies.sort_unstable();
        (latencies, log["last_us"].as_u64().unwrap())
    }

    /// Waits until `expected` requests have arrived (giving up after 30 s without one).
    async fn drain(&self, expected: usize) -> (Vec<u64>, u64) {
        let (mut seen, mut progress) = (0, Instant::now());
        loop {
            let arrived = self.arrived().await;
            if arrived >= expected {
                return self.take_log().await;
            }
            if arrived > seen {
                (seen, progress) = (arrived, Instant::now());
            } else if progress.elapsed() > Duration::from_secs(30) {
                eprintln!("gave up waiting: {arrived} of {expected} arrived");
                return self.take_log().await;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Publishes `n` events stamped with the time they are sent: one request to
    /// `/api/v1/events`, or for more than one, to `/api/v1/events/batch`.
    async fn publish(&self, n: usize) -> bool {
        let event = || {
            json!({"type": "build.completed", "source": "bench",
                   "data": {"published_at_us": now_us(), "pad": "x".repeat(256)},
                   "metadata": {"project": "NEXUS"}})
        };
        let (url, body) = match n {
            1 => (format!("{}/api/v1/events", self.nexus), event()),
            n => (
                format!("{}/api/v1/events/batch", self.nexus),
                json!({"events": (0..n).map(|_| event()).collect::<Vec<_>>()}),
            ),
        };
        let sent = self
            .client
            .post(url)
            .bearer_auth(API_KEY)
            .json(&body)
            .send()
            .await;
        matches!(sent, Ok(r) if r.status().is_success())
    }

    async fn subscribe(&self, n: usize) {
        let body = json!({"name": format!("bench {n}"), "events": ["build.*"],
                          "url": format!("{}/hook/{n}", self.receiver)});
        let url = format!("{}/api/v1/subscriptions", self.nexus);
        let reply = self
            .client
            .post(url)
            .bearer_auth(API_KEY)
            .json(&body)
            .send()
            .await;
        assert!(
            reply.unwrap().status().is_success(),
            "creating a subscription"
        );
    }

    /// The ceiling: the receiver driven directly, `CONCURRENCY` keep-alive clients.
    async fn ceiling(&self, duration: Duration) -> Row {
        let run = |duration: Duration| async move {
            let started = Instant::now();
            let tasks: Vec<_> = (0..CONCURRENCY)
                .map(|_| {
                    let (client, url) = (self.client.clone(), format!("{}/direct", self.receiver));
                    tokio::spawn(async move {
                        let mut errors = 0;
                        while started.elapsed() < duration {
                            let event = json!({"type": "build.completed", "source": "bench",
                                "data": {"published_at_us": now_us(), "pad": "x".repeat(256)}});
                            match client.post(&url).json(&event).send().await {
                                Ok(r) if r.status().is_success() => {}
                                _ => errors += 1,
                            }
                        }
                        errors
                    })
                })
                .collect();
            let mut errors = 0;
            for task in tasks {
                errors += task.await.unwrap();
            }
            (errors, started.elapsed())
        };
        run(duration / 5).await; // warm-up
        self.take_log().await;
        let cpu = CpuMeter::start(std::process::id(), self.pids.1);
        let (errors, elapsed) = run(duration).await;
        let cpu = cpu.stop();
        let (latencies_us, _) = self.take_log().await;
        Row::new(
            "receiver directly (ceiling)",
            format!("{CONCURRENCY} clients"),
            latencies_us,
            elapsed,
            errors,
            cpu,
        )
    }

    /// Publishes `events`, `batch` per request, as fast as `PUBLISHERS` concurrent clients
    /// can, and waits until every delivery arrived.
    async fn saturate(&self, fan_out: FanOut, events: usize) -> Row {
        let FanOut {
            subscriptions,
            batch,
        } = fan_out;
        let run = |events: usize| async move {
            let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let started = Instant::now();
            let publishers: Vec<_> = (0..PUBLISHERS)
                .map(|_| {
                    let (bench, next) = (self.clone_handle(), next.clone());
                    tokio::spawn(async move {
                        let mut errors = 0;
                        loop {
                            let first = next.fetch_add(batch, std::sync::atomic::Ordering::Relaxed);
                            if first >= events {
                                break;
                            }
                            let n = batch.min(events - first);
                            errors += n * usize::from(!bench.publish(n).await);
                        }
                        errors
                    })
                })
                .collect();
            let mut errors = 0;
            for publisher in publishers {
                errors += publisher.await.unwrap();
            }
            let (latencies, last_us) = self.drain(events * subscriptions).await;
            let start_us = now_us() - started.elapsed().as_micros() as u64;
            (
                latencies,
                Duration::from_micros(last_us.saturating_sub(start_us)),
                errors,
            )
        };
        run((events / 10).max(1)).await; // warm-up
        let cpu = CpuMeter::start(self.pids.0, self.pids.1);
        let (latencies_us, elapsed, errors) = run(events).await;
        let cpu = cpu.stop();
        let name = format!("nexus, {fan_out}, max");
        Row::new(
            &name,
            format!("{PUBLISHERS} publishers"),
            latencies_us,
            elapsed,
            errors,
            cpu,
        )
    }

    /// Offers `deliveries_per_second` (as events of `subscriptions` deliveries each) at an
    /// even pace for `duration`, then waits until every delivery arrived.
    async fn paced(&self, fan_out: FanOut, deliveries_per_second: f64, duration: Duration) -> Row {
        let FanOut {
            subscriptions,
            batch,
        } = fan_out;
        let events_per_second = deliveries_per_second / subscriptions as f64;
        let in_flight = Arc::new(Semaphore::new(1024));
        let errors = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let cpu = CpuMeter::start(self.pids.0, self.pids.1);
        let started = Instant::now();
        let mut ticker = tokio::time::interval(Duration::from_millis(1));
        let mut sent = 0usize;
        while started.elapsed() < duration {
            ticker.tick().await;
            let due = (started.elapsed().as_secs_f64() * events_per_second) as usize;
            while sent < due {
                // What is due this tick, in requests of at most `batch` events.
                let n = batch.min(due - sent);
                sent += n;
                let Ok(permit) = in_flight.clone().try_acquire_owned() else {
                    errors.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
                    continue; // the server is not keeping up: counted, not queued here
                };
                let (bench, errors) = (self.clone_handle(), errors.clone());
                tokio::spawn(async move {
                    if !bench.publish(n).await {
                        errors.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
                    }
                    drop(permit);
                });
            }
        }
        let _ = in_flight.acquire_many(1024).await;
        let errors = errors.load(std::sync::atomic::Ordering::Relaxed);
        let (latencies_us, last_us) = self.drain((sent - errors) * subscriptions).await;
        let cpu = cpu.stop();
        let start_us = now_us() - started.elapsed().as_micros() as u64;
        let elapsed = Duration::from_micros(last_us.saturating_sub(start_us));
        let name = format!("nexus, {fan_out}, paced");
        Row::new(
            &name,
            format!("{deliveries_per_second:.0}/s"),
            latencies_us,
            elapsed,
            errors,
            cpu,
        )
    }

    fn clone_handle(&self) -> Bench {
        Bench {
            client: self.client.clone(),
            nexus: self.nexus.clone(),
            receiver: self.receiver.clone(),
            pids: self.pids,
        }
    }
}

#[tokio::main]
async fn main() {
    if std::env::args().any(|a| a == "--receiver") {
        return receiver::serve().await;
    }
    // `cargo bench` passes `--bench`; anything else (e.g. a filter) is ignored.
    let deliveries = env_or("NEXUS_BENCH_DELIVERIES", 20_000usize);
    let seconds = env_or("NEXUS_BENCH_SECONDS", 5u64);
    let duration = Duration::from_secs(seconds);

    let (receiver_process, receiver_url) = start({
        let mut command = Command::new(std::env::current_exe().unwrap());
        command.arg("--receiver");
        command
    })
    .await;
    let data_dir = tempfile::tempdir().unwrap();
    // NEXUS_BENCH_BINARY: another build of nexus to run, e.g. one with frame pointers for
    // a profiler.
    let binary = std::env::var("NEXUS_BENCH_BINARY")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_nexus").to_owned());
    let mut nexus = Command::new(binary);
    nexus
        .args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir.path())
        .env("NEXUS_API_KEY", API_KEY)
        .env("NEXUS_ALLOW_PRIVATE_TARGETS", "true")
        .env("NEXUS_DELIVERY_CONCURRENCY", CONCURRENCY.to_string())
        .env("RUST_LOG", "warn");
    let (nexus_process, nexus_url) = start(nexus).await;
    let pids = (
        nexus_process.id().expect("nexus is running"),
        receiver_process.id().expect("the receiver is running"),
    );
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1024)
        .build()
        .unwrap();
    let bench = Bench {
        client,
        nexus: nexus_url,
        receiver: receiver_url,
        pids,
    };

    let ceiling = bench.ceiling(duration).await;
    let quarter = ceiling.rate / 4.0;
    // Per subscription count: the most nexus delivers, a quarter of the ceiling (the
    // target's load), and for reference a quarter of what nexus itself sustains.
    let mut rows = vec![];
    let mut created = 0;
    // NEXUS_BENCH_SUBSCRIPTIONS: which fan-outs to run, as subscriptions, or subscriptions
    // `x` events per publish request; e.g. "50" to profile one alone.
    let mut fan_outs: Vec<FanOut> = std::env::var("NEXUS_BENCH_SUBSCRIPTIONS")
        .unwrap_or_else(|_| "1,1x100,50".to_owned())
        .split(',')
        .map(FanOut::parse)
        .collect();
    // Subscriptions are only ever added: run the smaller fan-outs first.
    fan_outs.sort_by_key(|fan_out| fan_out.subscriptions);
    for &fan_out in &fan_outs {
        let subscriptions = fan_out.subscriptions;
        while created < subscriptions {
            bench.subscribe(created).await;
            created += 1;
        }
        let max = bench.saturate(fan_out, deliveries / subscriptions).await;
        let own_quarter = max.rate / 4.0;
        rows.push(max);
        rows.push(bench.paced(fan_out, quarter, duration).await);
        rows.push(bench.paced(fan_out, own_quarter, duration).await);
    }

    println!();
    println!(
        "outbound benchmark: delivery concurrency {CONCURRENCY}, ~0.4 KiB events, {seconds} s paced runs, {deliveries} deliveries per max run, {} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!("latency: publish request sent -> request arrived at the receiver (ceiling: client send -> arrival)");
    println!();
    println!("CPU: microseconds of CPU time per delivery, of the sender (nexus; for the ceiling, the bench's client) and of the receiver");
    println!();
    println!("| scenario                           | offered        | delivered | deliveries/s | p50 ms   | p99 ms   | errors | sender µs | receiver µs |");
    println!("|------------------------------------|---------------:|----------:|-------------:|---------:|---------:|-------:|----------:|------------:|");
    ceiling.print();
    for row in &rows {
        row.print();
    }
    println!();
    for (n, fan_out) in fan_outs.iter().enumerate() {
        let (max, paced) = (&rows[3 * n], &rows[3 * n + 1]);
        let share = max.rate / ceiling.rate;
        let p99 = paced.percentile_ms(0.99);
        println!(
            "{fan_out}: {:.0}% of the ceiling (target >= 50%: {}); p99 at a quarter of the ceiling {p99:.1} ms (target < 50 ms: {})",
            share * 100.0,
            if share >= 0.5 { "met" } else { "NOT met" },
            if p99 < 50.0 && paced.errors == 0 { "met" } else { "NOT met" },
        );
    }
}
