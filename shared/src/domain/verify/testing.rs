//! Helpers shared by the scheme tests: requests at a fixed time, and signing as providers do.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use hmac::{KeyInit, Mac};
use http::{HeaderMap, HeaderName, HeaderValue};

use super::mac::{HmacSha1, HmacSha256};
use super::{verify, Scheme, VerifierConfig, VerifyError, VerifyRequest};

/// A webhook URL for schemes that do not sign it.
pub(super) const URL: &str = "https://hooks.example.com/webhook/flickclaw/source";

/// An instant `unix_secs` after the epoch.
pub(super) fn at(unix_secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(unix_secs, 0).unwrap()
}

/// A header map from `(name, value)` pairs, names in any case.
pub(super) fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    pairs
        .iter()
        .map(|(name, value)| {
            (
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            )
        })
        .collect()
}

/// Verifies a request under `scheme` with `secrets`.
pub(super) fn check(
    scheme: Scheme,
    secrets: &[&str],
    headers: &HeaderMap,
    body: &[u8],
    url: &str,
    now: DateTime<Utc>,
) -> Result<(), VerifyError> {
    let config = VerifierConfig {
        scheme,
        secrets: secrets.iter().map(|s| (*s).into()).collect(),
    };
    let request = VerifyRequest {
        headers,
        body,
        url,
        now,
    };
    verify(&config, &request)
}

pub(super) fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(key).unwrap();
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

pub(super) fn hmac_sha1(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = <HmacSha1 as KeyInit>::new_from_slice(key).unwrap();
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

pub(super) fn base64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}
