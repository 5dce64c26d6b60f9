//! `nexus serve`: every route, on SQLite, in one process.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use nexus_shared::adapters::embedded::{EnvSecrets, SqliteOutbound, SqliteQueue, SqliteStore};
use nexus_shared::adapters::http_client::HyperClient;
use nexus_shared::adapters::metrics::Prometheus;
use nexus_shared::config::Config;
use nexus_shared::http::local_router;
use nexus_shared::ports::clock::SystemClock;
use nexus_shared::ports::DeliveryQueue;
use nexus_shared::services::outbound::deliver::deliver_and_settle;
use nexus_shared::services::{AppState, Wiring};
use secrecy::ExposeSecret;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::api_key::{self, ApiKey};

/// How often expired processed items and dedupe markers are deleted.
const PURGE_INTERVAL: Duration = Duration::from_secs(600);
/// The local queue moves a message to its dead-letter table after this many receives, as
/// the SQS redrive policy does on AWS: a safety net for messages that keep failing to be
/// processed at all (each retry and each rate-limit delay is a receive).
const MAX_RECEIVE_COUNT: u32 = 100;
/// Deliveries worked on per request slot (`NEXUS_DELIVERY_CONCURRENCY`).
const DELIVERIES_PER_SLOT: usize = 4;

/// Runs the local gateway until SIGINT or SIGTERM.
pub async fn run(mut config: Config) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;
    let _lock = lock_data_dir(&config.data_dir)?;
    let db_path = config.data_dir.join("nexus.db");
    let store = Arc::new(
        SqliteStore::open(&db_path).with_context(|| format!("opening {}", db_path.display()))?,
    );
    let clock = Arc::new(SystemClock);
    let outbound_path = config.data_dir.join("outbound.db");
    let outbound = Arc::new(
        SqliteOutbound::open(&outbound_path)
            .with_context(|| format!("opening {}", outbound_path.display()))?,
    );
    // The delivery queue is kept by the outbound database's unsettled deliveries.
    let queue = Arc::new(
        SqliteQueue::open(&outbound, MAX_RECEIVE_COUNT, clock.clone())
            .await
            .with_context(|| {
                format!(
                    "loading the delivery queue from {}",
                    outbound_path.display()
                )
            })?,
    );

    let key = api_key::load_or_generate(config.api_key.as_ref(), &config.data_dir)?;
    match &key {
        ApiKey::Generated(secret) => println!(
            "Generated the consumer API key. It is shown only this once and kept in {}:\n  {}",
            config.data_dir.join("api_key").display(),
            secret.expose_secret()
        ),
        ApiKey::FromFile(_) => println!(
            "Consumer API key: kept in {}",
            config.data_dir.join("api_key").display()
        ),
        ApiKey::FromEnvironment(_) => println!("Consumer API key: from NEXUS_API_KEY"),
    }
    config.api_key = Some(key.secret().clone());

    let listener = TcpListener::bind(config.bind)
        .await
        .with_context(|| format!("binding {}", config.bind))?;
    let address = listener.local_addr()?;
    println!("Data directory: {}", config.data_dir.display());
    println!("nexus listening on http://{address}");

    let dedupe_window = config.dedupe_window;
    tokio::spawn(purge_loop(store.clone(), outbound.clone(), dedupe_window));
    let prometheus = Arc::new(Prometheus::default());
    let state = AppState::new(Wiring {
        store,
        secrets: Arc::new(EnvSecrets::from_process_env()),
        clock,
        http: Arc::new(HyperClient::new(
            config.outbound.allow_private_targets,
            config.outbound.concurrency,
        )),
        config: Arc::new(config),
        outbound,
        queue: queue.clone(),
        metrics: prometheus.clone(),
    });
    tokio::spawn(delivery_loop(state.clone(), queue));
    axum::serve(listener, local_router(state, prometheus))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("serving HTTP")
}

/// Deletes expired inbox items and dedupe markers, and publish idempotency keys older than
/// the dedupe window (the same promise: a repeat within the window is recognised).
async fn purge_loop(store: Arc<SqliteStore>, outbound: Arc<SqliteOutbound>, window: Duration) {
    let mut interval = tokio::time::interval(PURGE_INTERVAL);
    loop {
        interval.tick().await;
        let now = chrono::Utc::now();
        match store.purge_expired(now).await {
            Ok(0) => {}
            Ok(rows) => tracing::info!(rows, "purged expired items"),
            Err(error) => tracing::warn!(%error, "purging expired items failed"),
        }
        let before = now - window;
        match outbound.purge_idempotency_keys(before).await {
            Ok(0) => {}
            Ok(rows) => tracing::info!(rows, "purged old idempotency keys"),
            Err(error) => tracing::warn!(%error, "purging idempotency keys failed"),
        }
    }
}

/// The local queue consumer: works on up to [`DELIVERIES_PER_SLOT`] times
/// `NEXUS_DELIVERY_CONCURRENCY` deliveries at once, each running the same `deliver_one`
/// step the Lambda runs under SQS. The HTTP client holds the requests in flight to
/// `NEXUS_DELIVERY_CONCURRENCY`; the extra deliveries are the ones reading their records
/// or waiting for the commit of their outcome meanwhile, which would otherwise leave
/// connections idle.
async fn delivery_loop(state: AppState, queue: Arc<SqliteQueue>) {
    let outbound = &state.config.outbound;
    let permits = Arc::new(Semaphore::new(outbound.concurrency * DELIVERIES_PER_SLOT));
    let visibility = outbound.visibility_timeout();
    loop {
        // Wait for a free slot before taking messages off the queue.
        let first = permits
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let free = permits.available_permits() + 1;
        let received = match queue.receive(free, visibility).await {
            Ok(received) => received,
            Err(error) => {
                tracing::warn!(%error, "receiving from the delivery queue failed");
                drop(first);
                queue.wait_for_work(Duration::from_secs(1)).await;
                continue;
            }
        };
        if received.is_empty() {
            drop(first);
            queue.wait_for_work(Duration::from_secs(5)).await;
            continue;
        }
        let mut first = Some(first);
        for message in received {
            let permit = match first.take() {
                Some(permit) => permit,
                None => permits
                    .clone()
                    .acquire_owned()
                    .await
                    .expect("the semaphore is never closed"),
            };
            let state = state.clone();
            tokio::spawn(async move {
                deliver_and_settle(&state, message).await;
                drop(permit);
            });
        }
    }
}

/// Holds the data directory for this process: its stores assume they are the only writer
/// (one writer thread per database, caches kept beside it), so a second `nexus serve` on
/// the same directory must not start. The kernel drops the lock when the process ends,
/// however it ends.
fn lock_data_dir(data_dir: &std::path::Path) -> anyhow::Result<std::fs::File> {
    let path = data_dir.join("lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
            "another nexus serve is using the data directory {}",
            data_dir.display()
        ),
        Err(std::fs::TryLockError::Error(error)) => {
            Err(error).with_context(|| format!("locking {}", path.display()))
        }
    }
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing the SIGTERM handler");
    tokio::select! {
        _ = interrupt => {}
        _ = terminate.recv() => {}
    }
    tracing::info!("shutting down");
}
