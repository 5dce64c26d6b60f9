//! `nexus serve`: every route, on SQLite, in one process.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use nexus_shared::adapters::embedded::{EnvSecrets, SqliteStore};
use nexus_shared::config::Config;
use nexus_shared::http::local_router;
use nexus_shared::ports::clock::SystemClock;
use nexus_shared::services::AppState;
use secrecy::ExposeSecret;
use tokio::net::TcpListener;

use crate::api_key::{self, ApiKey};

/// How often expired processed items and dedupe markers are deleted.
const PURGE_INTERVAL: Duration = Duration::from_secs(600);

/// Runs the local gateway until SIGINT or SIGTERM.
pub async fn run(mut config: Config) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;
    let db_path = config.data_dir.join("nexus.db");
    let store = Arc::new(
        SqliteStore::open(&db_path).with_context(|| format!("opening {}", db_path.display()))?,
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

    tokio::spawn(purge_loop(store.clone()));
    let state = AppState {
        store,
        secrets: Arc::new(EnvSecrets::from_process_env()),
        clock: Arc::new(SystemClock),
        config: Arc::new(config),
    };
    axum::serve(listener, local_router(state))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("serving HTTP")
}

async fn purge_loop(store: Arc<SqliteStore>) {
    let mut interval = tokio::time::interval(PURGE_INTERVAL);
    loop {
        interval.tick().await;
        match store.purge_expired(chrono::Utc::now()).await {
            Ok(0) => {}
            Ok(rows) => tracing::info!(rows, "purged expired items"),
            Err(error) => tracing::warn!(%error, "purging expired items failed"),
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
