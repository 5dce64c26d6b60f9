//! Signing an outbound delivery, twice on the same request: the brief's
//! `X-Nexus-Signature-256` for receivers following its guide, and Standard Webhooks'
//! `webhook-signature` so any Standard Webhooks library verifies it.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use chrono::{DateTime, SecondsFormat, Utc};
use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

use super::event::EventType;
use super::ids::OutboundDeliveryId;
use super::subscription::SECRET_PREFIX;

type HmacSha256 = Hmac<Sha256>;

/// `v1,` and the base64 of a 32-byte HMAC-SHA256, plus the space before the next one.
const STANDARD_SIGNATURE_LEN: usize = 3 + 44 + 1;

/// `sha256=<hex>`, HMAC-SHA256 of `{timestamp}.{body}` keyed with the whole secret string.
pub const SIGNATURE_HEADER: &str = "X-Nexus-Signature-256";
/// The signed timestamp, RFC 3339 UTC to the second.
pub const TIMESTAMP_HEADER: &str = "X-Nexus-Timestamp";
/// The delivery id, the same on every attempt.
pub const DELIVERY_HEADER: &str = "X-Nexus-Delivery";
/// The event type.
pub const EVENT_HEADER: &str = "X-Nexus-Event";
/// Standard Webhooks' message id: the delivery id.
pub const WEBHOOK_ID_HEADER: &str = "webhook-id";
/// Standard Webhooks' timestamp: unix seconds of the same instant as `X-Nexus-Timestamp`.
pub const WEBHOOK_TIMESTAMP_HEADER: &str = "webhook-timestamp";
/// Standard Webhooks' signatures: `v1,<base64>` per active secret, space-separated.
pub const WEBHOOK_SIGNATURE_HEADER: &str = "webhook-signature";

/// Every header that identifies and signs one attempt of a delivery of `body` at `at`.
///
/// `secrets` are the subscription's active secrets, newest first
/// ([`Subscription::signing_secrets`](super::Subscription::signing_secrets)).
/// `X-Nexus-Signature-256` carries one signature, so it uses the newest secret;
/// `webhook-signature` lists one per secret, so receivers still holding a replaced secret
/// keep verifying through a rotation. Without secrets the signature headers are left out.
pub fn signature_headers(
    delivery_id: &OutboundDeliveryId,
    event_type: &EventType,
    at: DateTime<Utc>,
    body: &[u8],
    secrets: &[&SecretString],
) -> Vec<(&'static str, String)> {
    // Both schemes sign whole seconds, so both timestamps name the same instant.
    let unix = at.timestamp();
    let timestamp = DateTime::from_timestamp(unix, 0)
        .unwrap_or(at)
        .to_rfc3339_opts(SecondsFormat::Secs, true);
    let id = delivery_id.as_str();
    let mut headers = Vec::with_capacity(7);
    if let Some(newest) = secrets.first() {
        let signature = nexus_signature(newest.expose_secret(), &timestamp, body);
        headers.push((SIGNATURE_HEADER, signature));
    }
    headers.push((TIMESTAMP_HEADER, timestamp));
    headers.push((DELIVERY_HEADER, id.to_owned()));
    headers.push((EVENT_HEADER, event_type.as_str().to_owned()));
    headers.push((WEBHOOK_ID_HEADER, id.to_owned()));
    headers.push((WEBHOOK_TIMESTAMP_HEADER, unix.to_string()));
    if !secrets.is_empty() {
        let mut signatures = String::with_capacity(secrets.len() * STANDARD_SIGNATURE_LEN);
        for secret in secrets {
            if !signatures.is_empty() {
                signatures.push(' ');
            }
            signatures.push_str(&standard_signature(secret.expose_secret(), id, unix, body));
        }
        headers.push((WEBHOOK_SIGNATURE_HEADER, signatures));
    }
    headers
}

/// The brief's signature, `sha256=<hex>`: HMAC-SHA256 of `{timestamp}.{body}` keyed with
/// the UTF-8 bytes of the whole secret, `whsec_` included, as its Python
/// `verify_webhook` computes it.
pub fn nexus_signature(secret: &str, timestamp: &str, body: &[u8]) -> String {
    let mac = mac(secret.as_bytes(), &[timestamp.as_bytes(), b".", body]);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Checks a brief-style signature the way its `verify_webhook` does (the `sha256=` prefix
/// optional), in constant time. For the debug endpoint: no timestamp tolerance applies.
pub fn verify_nexus_signature(body: &[u8], timestamp: &str, signature: &str, secret: &str) -> bool {
    let signature = signature.strip_prefix("sha256=").unwrap_or(signature);
    let Ok(tag) = hex::decode(signature) else {
        return false;
    };
    mac(secret.as_bytes(), &[timestamp.as_bytes(), b".", body])
        .verify_slice(&tag)
        .is_ok()
}

/// One Standard Webhooks signature, `v1,<base64>`: HMAC-SHA256 of `{id}.{ts}.{body}`
/// keyed with the base64-decoded part of `key_secret` after `whsec_`.
///
/// A secret that is not `whsec_<base64>` (none of ours) is used as raw bytes rather than
/// failing the delivery; Standard Webhooks libraries would not accept it either way.
pub fn standard_signature(key_secret: &str, id: &str, ts: i64, body: &[u8]) -> String {
    let encoded = key_secret.strip_prefix(SECRET_PREFIX).unwrap_or(key_secret);
    let key = STANDARD
        .decode(encoded)
        .unwrap_or_else(|_| key_secret.as_bytes().to_vec());
    let ts = ts.to_string();
    let mac = mac(&key, &[id.as_bytes(), b".", ts.as_bytes(), b".", body]);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

fn mac(key: &[u8], message: &[&[u8]]) -> HmacSha256 {
    // HMAC takes keys of any length; the error exists only for fixed-size-key MACs.
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(key).expect("HMAC accepts any key");
    for part in message {
        mac.update(part);
    }
    mac
}

#[cfg(test)]
mod tests;
