//! `nexus worker`: the local worker that moves pending items from the gateway into agents'
//! workspaces and tells each agent, once per batch, by running its notify command.
//!
//! Per page of `GET /api/webhook/pending` and per configured agent: write each item to
//! `{workspace}/inbox/webhooks/{rowKey}.json` ([`inbox`]), run the agent's notify command
//! ([`notify`]), and only when it succeeds `DELETE /api/webhook/items` ([`batch`]). Delivery
//! is at-least-once: anything that fails leaves the items pending for the next poll.

pub mod batch;
pub mod client;
pub mod config;
pub mod inbox;
pub mod notify;
pub mod pretty;
pub mod run;

use std::path::PathBuf;

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;

use self::config::WorkerConfig;
use self::run::Worker;

/// How `nexus worker` was invoked.
#[derive(Debug, Clone)]
pub struct Options {
    /// The TOML config file.
    pub config: PathBuf,
    /// One cycle through every page, then exit (non-zero if anything failed).
    pub once: bool,
}

/// Loads the config and runs the worker until done (`once`) or stopped by a signal.
pub async fn run(options: Options) -> anyhow::Result<()> {
    let config = WorkerConfig::load(&options.config)?;
    tracing::info!(
        gateway = %config.gateway,
        agents = ?config.agents.keys().collect::<Vec<_>>(),
        poll_interval = %humantime::format_duration(config.poll_interval),
        once = options.once,
        "nexus worker starting"
    );
    let worker = Worker::new(config, stop_on_signals()?)?;
    if options.once {
        worker.once().await
    } else {
        worker.serve().await
    }
}

/// A flag that turns true on the first SIGINT or SIGTERM, so the worker stops between
/// batches. A second signal exits at once: that is safe too, since undelivered items are
/// still pending at the gateway.
fn stop_on_signals() -> anyhow::Result<watch::Receiver<bool>> {
    let (sender, receiver) = watch::channel(false);
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    tokio::spawn(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
        tracing::info!("stopping after the current batch (signal again to stop now)");
        sender.send_replace(true);
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
        tracing::warn!("stopping now");
        std::process::exit(130);
    });
    Ok(receiver)
}
