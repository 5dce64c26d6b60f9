//! Outbound events: subscriptions, publishing with fan-out, signed delivery with retries,
//! the delivery log and statistics. Everything here runs unchanged under `nexus serve`
//! (SQLite queue) and on Lambda (SQS).

pub mod deliver;
pub mod deliveries;
pub mod publish;
pub mod subscriptions;
pub mod testing;

use rand::RngCore;
use secrecy::SecretString;

use crate::config::OutboundConfig;
use crate::domain::outbound::{generate_secret, RetryPolicy};

/// A new signing secret: `whsec_` and 32 random bytes.
pub(crate) fn new_signing_secret() -> SecretString {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    generate_secret(&bytes)
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
