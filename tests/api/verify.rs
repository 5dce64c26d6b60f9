//! Provider signature schemes, end to end: the verifier configured in the secret store
//! (environment locally, Secrets Manager on AWS) decides what is stored.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{behaviour, spawn_app_with, unique, Backend, Options};

behaviour!(
    github_signatures_are_checked_on_the_raw_body,
    standard_webhooks_accept_any_secret_during_a_rotation_and_refuse_stale_timestamps,
    a_token_in_the_url_is_compared_and_never_stored,
    twilio_signatures_cover_the_public_url_and_the_form,
    an_unusable_verifier_config_fails_closed,
);

fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

fn agent_and_secret_name(prefix: &str) -> (String, String) {
    let agent = unique(prefix).replace('-', "_");
    let name = format!("WEBHOOK_SECRET_{agent}");
    (agent, name)
}

async fn github_signatures_are_checked_on_the_raw_body(backend: Backend) {
    let (agent, name) = agent_and_secret_name("gh");
    let config = json!({"scheme": "github", "secret": "It's a Secret to Everybody"});
    let app = spawn_app_with(
        backend,
        Options::default().secret(&name, config.to_string()),
    )
    .await;
    // GitHub's documented example delivery.
    let signature = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    let signed = app
        .webhook(&agent, Some("github"))
        .body("text/plain", "Hello, World!")
        .header("X-Hub-Signature-256", signature)
        .send()
        .await;
    let tampered = app
        .webhook(&agent, Some("github"))
        .body("text/plain", "Hello, World?")
        .header("X-Hub-Signature-256", signature)
        .send()
        .await;
    let unsigned = app
        .webhook(&agent, Some("github"))
        .body("text/plain", "Hello, World!")
        .send()
        .await;

    assert_eq!(signed.status, StatusCode::OK, "{}", signed.body);
    let message = tampered.error(StatusCode::UNAUTHORIZED, "unauthorized");
    assert_eq!(message, "signature does not match");
    let message = unsigned.error(StatusCode::UNAUTHORIZED, "unauthorized");
    assert_eq!(message, "missing X-Hub-Signature-256 header");
    let items = app.pending_items(&agent).await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["headers"]["x-hub-signature-256"], "[redacted]");
}

async fn standard_webhooks_accept_any_secret_during_a_rotation_and_refuse_stale_timestamps(
    backend: Backend,
) {
    let (agent, name) = agent_and_secret_name("openai");
    let old_key = b"old-key-0123456789abcdef";
    let new_key = b"new-key-0123456789abcdef";
    let secret = |key: &[u8]| format!("whsec_{}", STANDARD.encode(key));
    let config =
        json!({"scheme": "standard-webhooks", "secrets": [secret(old_key), secret(new_key)]});
    let app = spawn_app_with(
        backend,
        Options::default().secret(&name, config.to_string()),
    )
    .await;
    let body = r#"{"type":"response.completed","data":{"id":"resp_123"}}"#;
    let send = |key: &'static [u8], timestamp: i64, id: String| {
        let signed = format!("{id}.{timestamp}.{body}");
        let signature = format!(
            "v1,{}",
            STANDARD.encode(hmac_sha256(key, signed.as_bytes()))
        );
        app.webhook(&agent, Some("openai"))
            .json(body)
            .header("webhook-id", &id)
            .header("webhook-timestamp", &timestamp.to_string())
            .header("webhook-signature", &signature)
            .send()
    };
    let now = chrono::Utc::now().timestamp();

    let with_old = send(old_key, now, unique("msg")).await;
    let with_new = send(new_key, now, unique("msg")).await;
    let stale = send(new_key, now - 600, unique("msg")).await;
    let future = send(new_key, now + 600, unique("msg")).await;
    let unknown_key = send(b"someone-else-entirely!!", now, unique("msg")).await;

    assert_eq!(with_old.status, StatusCode::OK, "{}", with_old.body);
    assert_eq!(with_new.status, StatusCode::OK, "{}", with_new.body);
    assert!(stale
        .error(StatusCode::UNAUTHORIZED, "unauthorized")
        .contains("timestamp"));
    assert!(future
        .error(StatusCode::UNAUTHORIZED, "unauthorized")
        .contains("timestamp"));
    unknown_key.error(StatusCode::UNAUTHORIZED, "unauthorized");
    assert_eq!(app.pending_items(&agent).await.len(), 2);
}

async fn a_token_in_the_url_is_compared_and_never_stored(backend: Backend) {
    let (agent, name) = agent_and_secret_name("flickclaw");
    let token = unique("tok");
    let config = json!({"scheme": "token", "secret": token});
    let app = spawn_app_with(
        backend,
        Options::default().secret(&name, config.to_string()),
    )
    .await;

    let right = app
        .webhook(&agent, Some(&format!("putio&token={token}")))
        .body(
            "application/x-www-form-urlencoded",
            "file_id=67890&status=COMPLETED",
        )
        .send()
        .await;
    let wrong = app
        .webhook(&agent, Some("putio&token=guess"))
        .body("application/x-www-form-urlencoded", "file_id=1")
        .send()
        .await;
    let missing = app
        .webhook(&agent, Some("putio"))
        .body("application/x-www-form-urlencoded", "file_id=1")
        .send()
        .await;

    assert_eq!(right.status, StatusCode::OK, "{}", right.body);
    wrong.error(StatusCode::UNAUTHORIZED, "unauthorized");
    missing.error(StatusCode::UNAUTHORIZED, "unauthorized");
    let items = app.pending_items(&agent).await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["source"], "putio");
    assert!(!items[0].to_string().contains(&token));
}

async fn twilio_signatures_cover_the_public_url_and_the_form(backend: Backend) {
    let (agent, name) = agent_and_secret_name("sms");
    let auth_token = "twilio-auth-token-123";
    let config = json!({"scheme": "twilio", "secret": auth_token});
    let app = spawn_app_with(
        backend,
        Options::default().secret(&name, config.to_string()),
    )
    .await;
    let url = format!("{}/api/webhook/{agent}?source=twilio", app.base);
    // Twilio signs the URL followed by every form parameter, sorted, name then value.
    let signed = format!("{url}BodyHello worldFrom+14155550100To+14155550199");
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(auth_token.as_bytes()).unwrap();
    mac.update(signed.as_bytes());
    let signature = STANDARD.encode(mac.finalize().into_bytes());
    let form = "To=%2B14155550199&From=%2B14155550100&Body=Hello+world";

    let right = app
        .webhook(&agent, Some("twilio"))
        .body("application/x-www-form-urlencoded", form)
        .header("X-Twilio-Signature", &signature)
        .send()
        .await;
    let other_url = app
        .webhook(&agent, Some("twilio&extra=1"))
        .body("application/x-www-form-urlencoded", form)
        .header("X-Twilio-Signature", &signature)
        .send()
        .await;

    assert_eq!(right.status, StatusCode::OK, "{}", right.body);
    other_url.error(StatusCode::UNAUTHORIZED, "unauthorized");
}

async fn an_unusable_verifier_config_fails_closed(backend: Backend) {
    let (agent, name) = agent_and_secret_name("broken");
    let app = spawn_app_with(
        backend,
        Options::default().secret(&name, r#"{"scheme": "carrier-pigeon", "secret": "s3cr3t"}"#),
    )
    .await;

    let reply = app.webhook(&agent, None).json("{}").send().await;

    let message = reply.error(StatusCode::INTERNAL_SERVER_ERROR, "internal");
    assert!(!message.contains("s3cr3t"));
    assert!(app.pending_items(&agent).await.is_empty());
}
