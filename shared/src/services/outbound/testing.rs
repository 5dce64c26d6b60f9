//! Testing endpoints: send a test event to a URL or a subscription now, and the brief's
//! signature-verification debug helper.

use std::time::Instant;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::domain::outbound::{
    nexus_signature, signature_headers, truncate_body, verify_nexus_signature, Event, EventId,
    EventType, OutboundDeliveryId, SubscriptionId, TargetUrl, MAX_RESPONSE_BODY_BYTES,
};
use crate::services::{AppState, ServiceResult};

/// The event type test sends use unless told otherwise.
const TEST_EVENT_TYPE: &str = "webhook.test";

/// `POST /api/v1/test`: a URL, and optionally a secret to sign with and an event type.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestUrl {
    pub url: String,
    pub secret: Option<String>,
    pub event_type: Option<String>,
}

/// What a test send did.
#[derive(Debug, Serialize)]
pub struct TestResult {
    pub success: bool,
    pub delivery_id: String,
    pub event_type: String,
    pub status_code: Option<u16>,
    pub latency_ms: u64,
    pub response_body: Option<String>,
    pub error: Option<String>,
}

fn test_event(
    event_type: Option<&str>,
    now: chrono::DateTime<chrono::Utc>,
) -> ServiceResult<Event> {
    let event_type = EventType::parse(event_type.unwrap_or(TEST_EVENT_TYPE))?;
    Ok(Event::new(
        EventId::new(),
        event_type,
        "nexus.test".to_owned(),
        json!({"test": true, "message": "This is a test event from Nexus Webhooks."}),
        serde_json::Map::new(),
        now,
    ))
}

async fn send(
    state: &AppState,
    url: &TargetUrl,
    event: &Event,
    secrets: &[&SecretString],
) -> TestResult {
    let id = OutboundDeliveryId::new();
    let body = event.payload();
    let mut headers = if secrets.is_empty() {
        Vec::new()
    } else {
        signature_headers(&id, &event.event_type, state.clock.now(), &body, secrets)
    };
    headers.push(("Content-Type", "application/json".to_owned()));
    let started = Instant::now();
    let response = state
        .http
        .post(
            url.as_str(),
            &headers,
            body,
            state.config.outbound.timeout,
            MAX_RESPONSE_BODY_BYTES + 1,
        )
        .await;
    let latency_ms = started.elapsed().as_millis() as u64;
    let (status_code, response_body, error) = match response {
        Ok(response) => (
            Some(response.status),
            Some(truncate_body(&response.body, MAX_RESPONSE_BODY_BYTES).0),
            None,
        ),
        Err(error) => (None, None, Some(error.to_string())),
    };
    TestResult {
        success: status_code.is_some_and(|s| (200..300).contains(&s)),
        delivery_id: id.to_string(),
        event_type: event.event_type.to_string(),
        status_code,
        latency_ms,
        response_body,
        error,
    }
}

/// Sends a test event to any URL (outbound address policy applies).
pub async fn test_url(state: &AppState, input: TestUrl) -> ServiceResult<TestResult> {
    let url = super::target_url(&state.config.outbound, &input.url)?;
    let event = test_event(input.event_type.as_deref(), state.clock.now())?;
    let secret = input.secret.map(SecretString::from);
    let secrets: Vec<&SecretString> = secret.iter().collect();
    Ok(send(state, &url, &event, &secrets).await)
}

/// Sends a test event to a subscription, signed with its secrets. Nothing is stored.
pub async fn test_subscription(
    state: &AppState,
    id: &SubscriptionId,
    event_type: Option<&str>,
) -> ServiceResult<TestResult> {
    let subscription = super::subscriptions::get(state, id).await?;
    let now = state.clock.now();
    let event = test_event(event_type, now)?;
    let secrets = subscription.signing_secrets(now);
    Ok(send(state, &subscription.url, &event, &secrets).await)
}

/// The brief's debug endpoint: does `signature` sign `"{timestamp}.{payload}"` with
/// `secret`? The caller supplies the secret, so showing the expected value leaks nothing.
#[derive(Debug, Deserialize)]
pub struct VerifySignature {
    pub payload: String,
    pub timestamp: String,
    pub signature: String,
    pub secret: String,
}

#[derive(Debug, Serialize)]
pub struct VerifyResult {
    pub valid: bool,
    pub expected_signature: String,
}

pub fn verify_signature(input: &VerifySignature) -> VerifyResult {
    let body = input.payload.as_bytes();
    VerifyResult {
        valid: verify_nexus_signature(body, &input.timestamp, &input.signature, &input.secret),
        expected_signature: nexus_signature(&input.secret, &input.timestamp, body),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hmac::{Hmac, KeyInit, Mac};
    use secrecy::ExposeSecret;

    #[test]
    fn the_debug_helper_agrees_with_the_briefs_verify_webhook() {
        // hmac.new(b"your-secret", b"2025-11-30T10:30:00Z.{\"test\": true}", sha256).hexdigest()
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(b"your-secret").unwrap();
        mac.update(b"2025-11-30T10:30:00Z.{\"test\": true}");
        let signature = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        let input = VerifySignature {
            payload: r#"{"test": true}"#.into(),
            timestamp: "2025-11-30T10:30:00Z".into(),
            signature: signature.clone(),
            secret: "your-secret".into(),
        };
        let result = verify_signature(&input);
        assert!(result.valid);
        assert_eq!(result.expected_signature, signature);
        let wrong = VerifySignature {
            signature: "sha256=00".into(),
            ..input
        };
        assert!(!verify_signature(&wrong).valid);
    }

    #[test]
    fn secrets_are_not_exposed_by_debug_output() {
        let secret = SecretString::from("whsec_hidden");
        assert!(!format!("{secret:?}").contains("hidden"));
        assert_eq!(secret.expose_secret(), "whsec_hidden");
    }
}
