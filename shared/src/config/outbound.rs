//! Outbound delivery settings.

use std::time::Duration;

use super::{parse_count, parse_duration, parse_or, ConfigError};

/// Outbound delivery settings (the brief's `WEBHOOK_*` variables keep their names).
#[derive(Debug, Clone)]
pub struct OutboundConfig {
    /// `WEBHOOK_MAX_RETRIES`: retries after the first attempt. Default 5.
    pub max_retries: u32,
    /// `WEBHOOK_INITIAL_DELAY`: delay before the first retry, doubled each time. Default 5 s.
    pub initial_delay: Duration,
    /// `WEBHOOK_MAX_DELAY`: the longest delay between attempts. Default 1 h.
    pub max_delay: Duration,
    /// `WEBHOOK_TIMEOUT`: one attempt's time limit. Default 30 s.
    pub timeout: Duration,
    /// `WEBHOOK_THROTTLE_DELAY`: the least delay after a 429/502/504 or a timeout.
    /// Default 60 s.
    pub throttle_delay: Duration,
    /// `WEBHOOK_RATE_LIMIT`: requests per minute for subscriptions that set none. Default
    /// 0 = unlimited.
    pub default_rate_limit: u32,
    /// `NEXUS_SECRET_GRACE`: how long a rotated-out signing secret keeps signing. Default 24 h.
    pub secret_grace: Duration,
    /// `NEXUS_ALLOW_PRIVATE_TARGETS`: allow `http://` and private, loopback and link-local
    /// targets (local development and tests only). Default false.
    pub allow_private_targets: bool,
    /// `NEXUS_DELIVERY_CONCURRENCY`: requests to subscribers in flight at once. Default 64.
    pub concurrency: usize,
    /// `NEXUS_SWEEP_AFTER`: how long a delivery may be overdue for its first attempt before
    /// the sweep (AWS) takes it for stored but never queued and enqueues it again; longer
    /// than a queued message can take to be picked up. Default 15 min.
    pub sweep_after: Duration,
    /// `NEXUS_OUTBOUND_TABLE`: the DynamoDB table for subscriptions, events and deliveries.
    pub table: String,
    /// `NEXUS_QUEUE_URL` / `NEXUS_DLQ_URL`: the SQS delivery queue and its dead-letter queue.
    pub queue_url: Option<String>,
    pub dlq_url: Option<String>,
}

impl Default for OutboundConfig {
    fn default() -> Self {
        Self {
            max_retries: 5,
            initial_delay: Duration::from_secs(5),
            max_delay: Duration::from_secs(3600),
            timeout: Duration::from_secs(30),
            throttle_delay: Duration::from_secs(60),
            default_rate_limit: 0,
            secret_grace: Duration::from_secs(24 * 3600),
            allow_private_targets: false,
            concurrency: 64,
            sweep_after: Duration::from_secs(15 * 60),
            table: "nexus-outbound".to_owned(),
            queue_url: None,
            dlq_url: None,
        }
    }
}

impl OutboundConfig {
    /// A received message stays invisible this long: longer than one attempt can take, so
    /// a slow attempt is never sent twice.
    pub fn visibility_timeout(&self) -> Duration {
        self.timeout + Duration::from_secs(30)
    }
}

pub(super) fn outbound_from(
    get: &dyn Fn(&str) -> Option<String>,
) -> Result<OutboundConfig, ConfigError> {
    let d = OutboundConfig::default();
    let count =
        |name: &'static str, default: usize| parse_or(get(name), name, default, parse_count);
    let duration =
        |name: &'static str, default: Duration| parse_or(get(name), name, default, parse_duration);
    Ok(OutboundConfig {
        max_retries: count("WEBHOOK_MAX_RETRIES", d.max_retries as usize)? as u32,
        initial_delay: duration("WEBHOOK_INITIAL_DELAY", d.initial_delay)?,
        max_delay: duration("WEBHOOK_MAX_DELAY", d.max_delay)?,
        timeout: duration("WEBHOOK_TIMEOUT", d.timeout)?,
        throttle_delay: duration("WEBHOOK_THROTTLE_DELAY", d.throttle_delay)?,
        default_rate_limit: count("WEBHOOK_RATE_LIMIT", d.default_rate_limit as usize)? as u32,
        secret_grace: duration("NEXUS_SECRET_GRACE", d.secret_grace)?,
        allow_private_targets: parse_or(
            get("NEXUS_ALLOW_PRIVATE_TARGETS"),
            "NEXUS_ALLOW_PRIVATE_TARGETS",
            d.allow_private_targets,
            parse_bool,
        )?,
        concurrency: count("NEXUS_DELIVERY_CONCURRENCY", d.concurrency)?,
        sweep_after: duration("NEXUS_SWEEP_AFTER", d.sweep_after)?,
        table: get("NEXUS_OUTBOUND_TABLE").unwrap_or(d.table),
        queue_url: get("NEXUS_QUEUE_URL"),
        dlq_url: get("NEXUS_DLQ_URL"),
    })
}

fn parse_bool(value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" => Ok(true),
        "0" | "false" | "no" => Ok(false),
        _ => Err(format!("expected true or false, got {value:?}")),
    }
}
