use chrono::TimeDelta;
use http::{HeaderMap, HeaderName, HeaderValue};

use super::*;
use crate::domain::verify::{verify, Scheme, VerifierConfig, VerifyError, VerifyRequest};

/// The vector in the Standard Webhooks libraries' tests.
const SW_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const SW_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
const SW_TS: i64 = 1_614_265_330;
const SW_BODY: &[u8] = br#"{"test": 2432232314}"#;
const SW_SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

const DELIVERY: &str = "dlv_01arz3ndektsv4rrffq69g5fav";
const BODY: &[u8] = br#"{"id":"evt_1","type":"build.completed"}"#;
/// 2026-11-23T04:17:03Z.
const UNIX: i64 = 1_795_407_423;

fn at() -> DateTime<Utc> {
    // Milliseconds the signed timestamps must drop.
    DateTime::from_timestamp(UNIX, 456_000_000).unwrap()
}

fn headers_for(secrets: &[&str]) -> Vec<(&'static str, String)> {
    let secrets: Vec<SecretString> = secrets.iter().map(|s| (*s).into()).collect();
    let refs: Vec<&SecretString> = secrets.iter().collect();
    signature_headers(
        &OutboundDeliveryId::parse(DELIVERY).unwrap(),
        &EventType::parse("build.completed").unwrap(),
        at(),
        BODY,
        &refs,
    )
}

fn header<'a>(headers: &'a [(&'static str, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.as_str())
}

fn header_map(headers: &[(&'static str, String)]) -> HeaderMap {
    headers
        .iter()
        .map(|(name, value)| {
            (
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            )
        })
        .collect()
}

fn standard_verify(
    headers: &[(&'static str, String)],
    secrets: &[&str],
) -> Result<(), VerifyError> {
    let config = VerifierConfig {
        scheme: Scheme::StandardWebhooks,
        secrets: secrets.iter().map(|s| (*s).into()).collect(),
    };
    let map = header_map(headers);
    let request = VerifyRequest {
        headers: &map,
        body: BODY,
        url: "https://your-app.com/webhooks/nexus",
        now: at() + TimeDelta::seconds(2),
    };
    verify(&config, &request)
}

#[test]
fn the_standard_webhooks_published_vector_is_reproduced() {
    assert_eq!(
        standard_signature(SW_SECRET, SW_ID, SW_TS, SW_BODY),
        SW_SIGNATURE
    );
}

#[test]
fn every_header_is_present_with_timestamps_naming_the_same_second() {
    let headers = headers_for(&[SW_SECRET]);
    let names: Vec<&str> = headers.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        names,
        [
            "X-Nexus-Signature-256",
            "X-Nexus-Timestamp",
            "X-Nexus-Delivery",
            "X-Nexus-Event",
            "webhook-id",
            "webhook-timestamp",
            "webhook-signature",
        ]
    );
    assert_eq!(
        header(&headers, TIMESTAMP_HEADER),
        Some("2026-11-23T04:17:03Z")
    );
    assert_eq!(
        header(&headers, WEBHOOK_TIMESTAMP_HEADER),
        Some("1795407423")
    );
    assert_eq!(header(&headers, DELIVERY_HEADER), Some(DELIVERY));
    assert_eq!(header(&headers, WEBHOOK_ID_HEADER), Some(DELIVERY));
    assert_eq!(header(&headers, EVENT_HEADER), Some("build.completed"));
}

#[test]
fn the_nexus_signature_matches_the_briefs_python_verify_webhook() {
    // hmac.new(secret.encode(), f"{timestamp}.{payload}".encode(), sha256).hexdigest(),
    // computed with Python.
    let expected = "sha256=92ab7b04c04d1a5146b8dbb258c24ad97b0584d750490ca409e987e455ff6c5e";
    let headers = headers_for(&[SW_SECRET]);
    assert_eq!(header(&headers, SIGNATURE_HEADER), Some(expected));
    let timestamp = header(&headers, TIMESTAMP_HEADER).unwrap();
    assert!(verify_nexus_signature(BODY, timestamp, expected, SW_SECRET));
    assert!(verify_nexus_signature(
        BODY,
        timestamp,
        &expected[7..],
        SW_SECRET
    ));
}

#[test]
fn the_standard_signature_matches_an_independent_computation() {
    // base64(hmac(b64decode(secret[6:]), f"{id}.{ts}.{payload}")), computed with Python.
    let headers = headers_for(&[SW_SECRET]);
    assert_eq!(
        header(&headers, WEBHOOK_SIGNATURE_HEADER),
        Some("v1,+UB6BY+mFsgFd8H8IhOTR0wXDxwCRnAe/KHmHNEJ2eE=")
    );
}

#[test]
fn the_domain_verifier_accepts_what_we_sign() {
    let headers = headers_for(&[SW_SECRET]);
    assert_eq!(standard_verify(&headers, &[SW_SECRET]), Ok(()));
    let other = "whsec_dGhlIG90aGVyIGtleSwgbG9uZyBlbm91Z2ggdG8gdXNl";
    assert_eq!(
        standard_verify(&headers, &[other]),
        Err(VerifyError::BadSignature)
    );
}

#[test]
fn during_a_rotation_receivers_with_either_secret_verify() {
    let new = "whsec_bmV3IHNlY3JldCBieXRlcyBmb3IgdGhlIHJvdGF0aW9u";
    let headers = headers_for(&[new, SW_SECRET]);
    let signatures = header(&headers, WEBHOOK_SIGNATURE_HEADER).unwrap();
    assert_eq!(signatures.split(' ').count(), 2);
    assert!(signatures.starts_with("v1,"));
    assert_eq!(standard_verify(&headers, &[new]), Ok(()));
    assert_eq!(standard_verify(&headers, &[SW_SECRET]), Ok(()));
    // The single Nexus signature uses the newest secret.
    let timestamp = header(&headers, TIMESTAMP_HEADER).unwrap();
    let nexus = header(&headers, SIGNATURE_HEADER).unwrap();
    assert!(verify_nexus_signature(BODY, timestamp, nexus, new));
    assert!(!verify_nexus_signature(BODY, timestamp, nexus, SW_SECRET));
}

#[test]
fn a_tampered_body_timestamp_or_signature_fails_the_nexus_check() {
    let headers = headers_for(&[SW_SECRET]);
    let timestamp = header(&headers, TIMESTAMP_HEADER).unwrap();
    let signature = header(&headers, SIGNATURE_HEADER).unwrap();
    assert!(!verify_nexus_signature(
        b"{}", timestamp, signature, SW_SECRET
    ));
    assert!(!verify_nexus_signature(
        BODY,
        "2026-11-23T04:17:04Z",
        signature,
        SW_SECRET
    ));
    assert!(!verify_nexus_signature(
        BODY,
        timestamp,
        "sha256=zz",
        SW_SECRET
    ));
    assert!(!verify_nexus_signature(
        BODY,
        timestamp,
        &signature[..20],
        SW_SECRET
    ));
}

#[test]
fn without_secrets_only_the_identifying_headers_are_sent() {
    let headers = headers_for(&[]);
    assert_eq!(headers.len(), 5);
    assert_eq!(header(&headers, SIGNATURE_HEADER), None);
    assert_eq!(header(&headers, WEBHOOK_SIGNATURE_HEADER), None);
}

#[test]
fn every_header_value_is_a_valid_http_header_value() {
    let headers = headers_for(&[SW_SECRET, "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"]);
    assert_eq!(header_map(&headers).len(), 7);
}
