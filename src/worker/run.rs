//! The polling loop. One cycle walks the pending list once, page by page; the service
//! repeats cycles every `poll_interval`, backing off while the gateway is down.
//!
//! A cycle follows `next_cursor`, which continues *after* the last item listed, so items
//! left pending (unconfigured agents, failed batches) are passed over, not read again: a
//! cycle always ends, and those items come round again on the next one.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use tokio::sync::watch;

use super::batch::{BatchError, Deliverer};
use super::client::{Gateway, GatewayError};
use super::config::WorkerConfig;

/// What one cycle did.
#[derive(Debug, Default)]
pub struct CycleReport {
    pub delivered: usize,
    /// Batches not (wholly) delivered; their items stay pending.
    pub failed_batches: usize,
    /// Items of agents this worker does not serve, by agent: left pending.
    pub unconfigured: BTreeMap<String, usize>,
    /// The cycle stopped early on a stop signal.
    pub stopped: bool,
}

/// The worker: its configuration, its gateway client and its stop signal.
pub struct Worker {
    config: WorkerConfig,
    gateway: Gateway,
    stop: watch::Receiver<bool>,
    /// Unconfigured agents already warned about: one warning each, not one per poll.
    warned: HashSet<String>,
}

impl Worker {
    /// `stop` turns true when the worker should stop after the current batch.
    pub fn new(config: WorkerConfig, stop: watch::Receiver<bool>) -> anyhow::Result<Self> {
        let gateway = Gateway::new(&config)?;
        Ok(Self {
            config,
            gateway,
            stop,
            warned: HashSet::new(),
        })
    }

    /// One cycle, then an error if anything was not delivered (for cron).
    pub async fn once(mut self) -> anyhow::Result<()> {
        let report = self.cycle().await.map_err(|e| self.explain(e))?;
        if report.failed_batches > 0 {
            anyhow::bail!(
                "{} batch(es) not delivered; their items stay pending for the next run",
                report.failed_batches
            );
        }
        Ok(())
    }

    /// Cycles until stopped; only a configuration error (401, other 4xx) ends it early.
    pub async fn serve(mut self) -> anyhow::Result<()> {
        let mut failures = 0u32;
        loop {
            let wait = match self.cycle().await {
                Ok(report) if report.stopped => break,
                Ok(_) => {
                    if failures > 0 {
                        tracing::info!(failures, "the gateway answers again");
                    }
                    failures = 0;
                    self.config.poll_interval
                }
                Err(error) if error.is_transient() => {
                    failures = failures.saturating_add(1);
                    let wait =
                        backoff(failures, self.config.poll_interval, self.config.max_backoff);
                    tracing::warn!(
                        error = %error,
                        failures,
                        retry_in = %humantime::format_duration(wait),
                        "polling the gateway failed"
                    );
                    wait
                }
                Err(error) => return Err(self.explain(error)),
            };
            if !self.sleep(wait).await {
                break;
            }
        }
        tracing::info!("worker stopped");
        Ok(())
    }

    /// Walks every page of the pending list once.
    pub async fn cycle(&mut self) -> Result<CycleReport, GatewayError> {
        let deliverer = Deliverer {
            gateway: &self.gateway,
            notify_timeout: self.config.notify_timeout,
            api_key_env: &self.config.api_key_env,
        };
        let mut report = CycleReport::default();
        let mut cursor: Option<String> = None;
        'pages: loop {
            if *self.stop.borrow() {
                report.stopped = true;
                break;
            }
            let page = self
                .gateway
                .pending(self.config.page_size, cursor.as_deref())
                .await?;
            for (agent, items) in &page.agents {
                let Some(agent_config) = self.config.agents.get(agent) else {
                    *report.unconfigured.entry(agent.clone()).or_default() += items.len();
                    continue;
                };
                if *self.stop.borrow() {
                    report.stopped = true;
                    break 'pages;
                }
                match deliverer.deliver(agent, agent_config, items).await {
                    Ok(count) => {
                        report.delivered += count;
                        tracing::info!(agent, items = count, "delivered");
                    }
                    Err(BatchError::Gateway(error)) => return Err(error),
                    Err(BatchError::Local(error)) => {
                        report.failed_batches += 1;
                        tracing::error!(
                            agent,
                            error = format!("{error:#}"),
                            "batch not delivered; its items stay pending and are retried next poll"
                        );
                    }
                }
            }
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        self.warn_unconfigured(&report.unconfigured);
        Ok(report)
    }

    fn warn_unconfigured(&mut self, unconfigured: &BTreeMap<String, usize>) {
        for (agent, items) in unconfigured {
            if self.warned.insert(agent.clone()) {
                tracing::warn!(
                    agent,
                    items,
                    "pending items for an agent not in the worker config: left pending \
                     (add [agents.{agent}] to deliver them)"
                );
            }
        }
    }

    /// Sleeps `wait`; false if a stop signal came first.
    async fn sleep(&self, wait: Duration) -> bool {
        let mut stop = self.stop.clone();
        tokio::select! {
            () = tokio::time::sleep(wait) => true,
            _ = stop.wait_for(|stopping| *stopping) => false,
        }
    }

    /// The error that ends the worker, with what to check.
    fn explain(&self, error: GatewayError) -> anyhow::Error {
        let hint = match &error {
            GatewayError::Unauthorized { .. } => format!(
                "check the API key: the environment variable {} or api_key_file in the worker config",
                self.config.api_key_env
            ),
            GatewayError::Refused { .. } => {
                "check gateway and page_size in the worker config".to_owned()
            }
            _ => "is the gateway running, and is gateway in the worker config right?".to_owned(),
        };
        anyhow::anyhow!("{error}; {hint}")
    }
}

/// The wait after `failures` failed polls in a row: `base`, doubling each time, at most `cap`.
pub fn backoff(failures: u32, base: Duration, cap: Duration) -> Duration {
    let factor = 2u32.saturating_pow(failures.saturating_sub(1));
    base.saturating_mul(factor).min(cap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_poll_interval_up_to_the_cap() {
        let base = Duration::from_secs(30);
        let cap = Duration::from_secs(300);
        let waits: Vec<u64> = (1..=6).map(|n| backoff(n, base, cap).as_secs()).collect();
        assert_eq!(waits, [30, 60, 120, 240, 300, 300]);
        assert_eq!(backoff(u32::MAX, base, cap), cap);
    }
}
