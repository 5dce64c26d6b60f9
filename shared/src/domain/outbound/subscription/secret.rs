//! Subscription signing secrets: generation, and which ones sign during a rotation.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use secrecy::SecretString;

/// What every signing secret starts with, as Standard Webhooks secrets do.
pub const SECRET_PREFIX: &str = "whsec_";

/// How many random bytes callers should pass to [`generate_secret`].
pub const SECRET_RANDOM_BYTES: usize = 32;

/// The fewest random bytes a secret may have: 192 bits, the Standard Webhooks minimum.
pub const MIN_SECRET_RANDOM_BYTES: usize = 24;

/// A new signing secret, `whsec_` and the standard base64 of `random`: the form Standard
/// Webhooks libraries take as is.
///
/// # Panics
///
/// If `random` is shorter than [`MIN_SECRET_RANDOM_BYTES`]: a weak secret is a bug.
pub fn generate_secret(random: &[u8]) -> SecretString {
    assert!(
        random.len() >= MIN_SECRET_RANDOM_BYTES,
        "a signing secret needs at least {MIN_SECRET_RANDOM_BYTES} random bytes"
    );
    SecretString::from(format!("{SECRET_PREFIX}{}", STANDARD.encode(random)))
}

/// One of a subscription's secrets. `Debug` shows the value as `[REDACTED]`.
#[derive(Debug, Clone)]
pub struct SigningSecret {
    /// The whole `whsec_…` string, as shown to the user once.
    pub value: SecretString,
    /// `None` for the current secret; for a replaced one, the end of its grace period.
    pub expires_at: Option<DateTime<Utc>>,
}

impl SigningSecret {
    /// A secret that signs until it is rotated out.
    pub fn current(value: SecretString) -> Self {
        Self {
            value,
            expires_at: None,
        }
    }

    /// Whether this secret still signs at `now`.
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_none_or(|expires_at| expires_at > now)
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn a_generated_secret_is_whsec_and_the_base64_of_the_bytes() {
        let secret = generate_secret(&[0xfb; 32]);
        let value = secret.expose_secret();
        assert_eq!(value, format!("whsec_{}", "+/v7".repeat(10) + "+/s="));
        let key = STANDARD.decode(value.strip_prefix(SECRET_PREFIX).unwrap());
        assert_eq!(key.unwrap(), [0xfb; 32]);
    }

    #[test]
    #[should_panic(expected = "at least 24 random bytes")]
    fn fewer_than_24_random_bytes_are_refused() {
        generate_secret(&[1; 23]);
    }

    #[test]
    fn a_replaced_secret_signs_until_its_grace_period_ends() {
        let now = DateTime::from_timestamp(1_000, 0).unwrap();
        let current = SigningSecret::current(generate_secret(&[1; 24]));
        assert!(current.is_active(now));
        let replaced = SigningSecret {
            expires_at: Some(now),
            ..current
        };
        assert!(replaced.is_active(now - chrono::TimeDelta::seconds(1)));
        assert!(!replaced.is_active(now));
        assert!(!format!("{replaced:?}").contains("whsec_"));
    }
}
