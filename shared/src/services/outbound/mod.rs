//! Outbound events: subscriptions, publishing with fan-out, signed delivery with retries,
//! the delivery log and statistics. Everything here runs unchanged under `nexus serve`
//! (SQLite queue) and on Lambda (SQS).

pub mod deliver;
pub mod deliveries;
pub mod publish;
pub mod subscriptions;
pub mod sweep;
pub mod testing;

use rand::RngCore;
use secrecy::SecretString;

use crate::config::OutboundConfig;
use crate::domain::outbound::{generate_secret, is_forbidden_address, RetryPolicy, TargetUrl};
use crate::domain::DomainError;

/// A new signing secret: `whsec_` and 32 random bytes.
pub(crate) fn new_signing_secret() -> SecretString {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    generate_secret(&bytes)
}

/// A subscriber URL under the outbound policy: `https://` and, for an IP literal, a public
/// address (names are checked on every connection, when they are resolved).
pub(crate) fn target_url(config: &OutboundConfig, value: &str) -> Result<TargetUrl, DomainError> {
    let url = TargetUrl::parse(value, config.allow_private_targets)?;
    let ip = url
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok();
    if !config.allow_private_targets && ip.is_some_and(is_forbidden_address) {
        return Err(DomainError::new(
            "url",
            "is a private, loopback or link-local address",
        ));
    }
    Ok(url)
}

/// The retry policy the configuration describes.
pub(crate) fn retry_policy(config: &OutboundConfig) -> RetryPolicy {
    RetryPolicy {
        max_retries: config.max_retries,
        initial_delay: config.initial_delay,
        max_delay: config.max_delay,
        throttle_floor: config.throttle_delay,
    }
}
