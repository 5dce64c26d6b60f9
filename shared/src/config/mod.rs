//! The one configuration struct, read from the environment once at start-up.
//!
//! Every setting has a documented default (README.md, "Configuration"); durations accept
//! plain seconds (`60`) or units (`90s`, `15m`, `7d`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;

mod outbound;

use outbound::outbound_from;
pub use outbound::OutboundConfig;

/// Largest body DynamoDB can hold with room for the item's other attributes (items are
/// limited to 400 KB in all).
pub const AWS_MAX_BODY_BYTES: usize = 350 * 1024;

/// A setting that could not be used, named so the operator can fix it.
#[derive(Debug, thiserror::Error)]
#[error("configuration error in {name}: {reason}")]
pub struct ConfigError {
    pub name: &'static str,
    pub reason: String,
}

/// Nexus configuration. See README.md for each variable.
#[derive(Debug, Clone)]
pub struct Config {
    /// `NEXUS_BIND`: where `nexus serve` listens. Default `127.0.0.1:8080`.
    pub bind: SocketAddr,
    /// `NEXUS_DATA_DIR`: the local data directory. Default `./nexus-data`.
    pub data_dir: PathBuf,
    /// `NEXUS_API_KEY`: the consumer API key; when unset, `nexus serve` generates one and
    /// the Lambdas read the secret `NEXUS_API_KEY` from Secrets Manager.
    pub api_key: Option<SecretString>,
    /// `NEXUS_PUBLIC_URL`: the base URL providers call (`https://hooks.example.com`), for
    /// schemes that sign the URL (Twilio) behind a proxy that rewrites `Host`. Default: from
    /// the request's `Host` and `X-Forwarded-Proto`.
    pub public_url: Option<String>,
    /// `NEXUS_MAX_BODY_BYTES`: largest accepted webhook body. Default 256 KiB.
    pub max_body_bytes: usize,
    /// `NEXUS_PROCESSED_RETENTION`: how long processed items are kept. Default 7 days.
    pub processed_retention: Duration,
    /// `NEXUS_DEDUPE_WINDOW`: how long a delivery id is remembered. Default 7 days.
    pub dedupe_window: Duration,
    /// `NEXUS_SECRETS_CACHE_TTL`: how long a Lambda reuses a secret it read. Default 60 s.
    pub secrets_cache_ttl: Duration,
    /// `NEXUS_SECRETS_PREFIX`: Secrets Manager name prefix. Default `nexus/`.
    pub secrets_prefix: String,
    /// `NEXUS_TABLE`: the DynamoDB table. Default `nexus-inbox`.
    pub table: String,
    /// `NEXUS_PENDING_PAGE_SIZE`: default page size of the pending list. Default 100.
    pub pending_page_size: usize,
    /// `NEXUS_PENDING_MAX_PAGE_SIZE`: largest `limit` a client may ask for. Default 1000.
    pub pending_max_page_size: usize,
    /// `NEXUS_PENDING_MAX_BYTES`: payload bytes per pending page before it is cut short
    /// (Lambda responses are limited to 6 MB). Default 4 MiB.
    pub pending_max_bytes: usize,
    /// Outbound delivery settings.
    pub outbound: OutboundConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("nexus-data"),
            api_key: None,
            public_url: None,
            max_body_bytes: 256 * 1024,
            processed_retention: Duration::from_secs(7 * 24 * 3600),
            dedupe_window: Duration::from_secs(7 * 24 * 3600),
            secrets_cache_ttl: Duration::from_secs(60),
            secrets_prefix: "nexus/".to_owned(),
            table: "nexus-inbox".to_owned(),
            pending_page_size: 100,
            pending_max_page_size: 1000,
            pending_max_bytes: 4 * 1024 * 1024,
            outbound: OutboundConfig::default(),
        }
    }
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `lookup`, falling back to defaults, then checks them.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let defaults = Self::default();
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let config = Self {
            bind: parse_or(get("NEXUS_BIND"), "NEXUS_BIND", defaults.bind, |v| {
                v.parse().map_err(|e| format!("{e}"))
            })?,
            data_dir: get("NEXUS_DATA_DIR").map_or(defaults.data_dir, PathBuf::from),
            api_key: get("NEXUS_API_KEY").map(SecretString::from),
            public_url: get("NEXUS_PUBLIC_URL").map(|url| url.trim_end_matches('/').to_owned()),
            max_body_bytes: parse_or(
                get("NEXUS_MAX_BODY_BYTES"),
                "NEXUS_MAX_BODY_BYTES",
                defaults.max_body_bytes,
                parse_count,
            )?,
            processed_retention: parse_or(
                get("NEXUS_PROCESSED_RETENTION"),
                "NEXUS_PROCESSED_RETENTION",
                defaults.processed_retention,
                parse_duration,
            )?,
            dedupe_window: parse_or(
                get("NEXUS_DEDUPE_WINDOW"),
                "NEXUS_DEDUPE_WINDOW",
                defaults.dedupe_window,
                parse_duration,
            )?,
            secrets_cache_ttl: parse_or(
                get("NEXUS_SECRETS_CACHE_TTL"),
                "NEXUS_SECRETS_CACHE_TTL",
                defaults.secrets_cache_ttl,
                parse_duration,
            )?,
            secrets_prefix: get("NEXUS_SECRETS_PREFIX").unwrap_or(defaults.secrets_prefix),
            table: get("NEXUS_TABLE").unwrap_or(defaults.table),
            pending_page_size: parse_or(
                get("NEXUS_PENDING_PAGE_SIZE"),
                "NEXUS_PENDING_PAGE_SIZE",
                defaults.pending_page_size,
                parse_count,
            )?,
            pending_max_page_size: parse_or(
                get("NEXUS_PENDING_MAX_PAGE_SIZE"),
                "NEXUS_PENDING_MAX_PAGE_SIZE",
                defaults.pending_max_page_size,
                parse_count,
            )?,
            pending_max_bytes: parse_or(
                get("NEXUS_PENDING_MAX_BYTES"),
                "NEXUS_PENDING_MAX_BYTES",
                defaults.pending_max_bytes,
                parse_count,
            )?,
            outbound: outbound_from(&get)?,
        };
        config.validate()?;
        Ok(config)
    }

    /// Cross-field checks, so a bad combination fails at start-up, not on a request.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let fail = |name, reason: &str| {
            Err(ConfigError {
                name,
                reason: reason.to_owned(),
            })
        };
        if let Some(url) = &self.public_url {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return fail("NEXUS_PUBLIC_URL", "must start with https:// or http://");
            }
        }
        if self.max_body_bytes == 0 {
            return fail("NEXUS_MAX_BODY_BYTES", "must be positive");
        }
        if self.pending_page_size == 0 || self.pending_page_size > self.pending_max_page_size {
            return fail(
                "NEXUS_PENDING_PAGE_SIZE",
                "must be between 1 and NEXUS_PENDING_MAX_PAGE_SIZE",
            );
        }
        let outbound = &self.outbound;
        if outbound.initial_delay.is_zero() || outbound.initial_delay > outbound.max_delay {
            return fail(
                "WEBHOOK_INITIAL_DELAY",
                "must be positive and at most WEBHOOK_MAX_DELAY",
            );
        }
        if outbound.max_delay > Duration::from_secs(12 * 3600) {
            return fail(
                "WEBHOOK_MAX_DELAY",
                "must be at most 12h (the queue's visibility limit)",
            );
        }
        if outbound.timeout.is_zero() || outbound.timeout > Duration::from_secs(300) {
            return fail("WEBHOOK_TIMEOUT", "must be between 1s and 5m");
        }
        if outbound.concurrency == 0 {
            return fail("NEXUS_DELIVERY_CONCURRENCY", "must be positive");
        }
        if outbound.sweep_after <= outbound.visibility_timeout() {
            return fail(
                "NEXUS_SWEEP_AFTER",
                "must be longer than WEBHOOK_TIMEOUT + 30s, or a delivery being sent could be queued again",
            );
        }
        if self.pending_max_bytes < self.max_body_bytes {
            return fail(
                "NEXUS_PENDING_MAX_BYTES",
                "must be at least NEXUS_MAX_BODY_BYTES, or a large item could never be listed",
            );
        }
        Ok(())
    }

    /// The extra check for the AWS host, where an item must fit DynamoDB's 400 KB limit.
    pub fn validate_for_aws(&self) -> Result<(), ConfigError> {
        if self.max_body_bytes > AWS_MAX_BODY_BYTES {
            return Err(ConfigError {
                name: "NEXUS_MAX_BODY_BYTES",
                reason: format!(
                    "must be at most {AWS_MAX_BODY_BYTES} on AWS (DynamoDB items are limited to 400 KB)"
                ),
            });
        }
        Ok(())
    }
}

fn parse_or<T>(
    value: Option<String>,
    name: &'static str,
    default: T,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<T, ConfigError> {
    match value {
        None => Ok(default),
        Some(value) => parse(value.trim()).map_err(|reason| ConfigError { name, reason }),
    }
}

fn parse_count(value: &str) -> Result<usize, String> {
    value
        .parse()
        .map_err(|_| format!("expected a whole number, got {value:?}"))
}

/// Plain seconds, or a humantime duration (`500ms`, `90s`, `7d`).
fn parse_duration(value: &str) -> Result<Duration, String> {
    if let Ok(secs) = value.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    humantime::parse_duration(value).map_err(|e| format!("{e} (expected e.g. 60, 90s, 7d)"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let env: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|name| env.get(name).cloned())
    }

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let config = config(&[]).unwrap();
        assert_eq!(config.max_body_bytes, 256 * 1024);
        assert_eq!(config.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(config.secrets_cache_ttl, Duration::from_secs(60));
    }

    #[test]
    fn durations_accept_seconds_and_units() {
        let config = config(&[
            ("NEXUS_SECRETS_CACHE_TTL", "90"),
            ("NEXUS_PROCESSED_RETENTION", "2d"),
        ])
        .unwrap();
        assert_eq!(config.secrets_cache_ttl, Duration::from_secs(90));
        assert_eq!(config.processed_retention, Duration::from_secs(2 * 86400));
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        let err = config(&[("NEXUS_MAX_BODY_BYTES", "lots")]).unwrap_err();
        assert_eq!(err.name, "NEXUS_MAX_BODY_BYTES");
        let err = config(&[("NEXUS_PENDING_PAGE_SIZE", "5000")]).unwrap_err();
        assert_eq!(err.name, "NEXUS_PENDING_PAGE_SIZE");
    }

    #[test]
    fn the_sweep_threshold_must_outlast_an_attempt() {
        assert_eq!(
            config(&[]).unwrap().outbound.sweep_after,
            Duration::from_secs(900)
        );
        let config_of = |pairs| config(pairs).map(|c| c.outbound.sweep_after);
        assert_eq!(
            config_of(&[("NEXUS_SWEEP_AFTER", "20m")]).unwrap(),
            Duration::from_secs(1200)
        );
        let err = config_of(&[("NEXUS_SWEEP_AFTER", "60s")]).unwrap_err();
        assert_eq!(err.name, "NEXUS_SWEEP_AFTER");
        assert!(config_of(&[("NEXUS_SWEEP_AFTER", "61s")]).is_ok());
        let err = config_of(&[("WEBHOOK_TIMEOUT", "5m"), ("NEXUS_SWEEP_AFTER", "5m")]).unwrap_err();
        assert_eq!(err.name, "NEXUS_SWEEP_AFTER");
    }

    #[test]
    fn aws_refuses_bodies_dynamodb_cannot_hold() {
        let config = config(&[("NEXUS_MAX_BODY_BYTES", "409600")]).unwrap();
        assert!(config.validate_for_aws().is_err());
        assert!(Config::default().validate_for_aws().is_ok());
    }

    #[test]
    fn the_api_key_is_not_printable() {
        let config = config(&[("NEXUS_API_KEY", "super-secret-key")]).unwrap();
        assert!(!format!("{config:?}").contains("super-secret-key"));
    }
}
