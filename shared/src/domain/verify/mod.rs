//! Provider signature verification on the raw request, before anything is parsed.
//!
//! A [`VerifierConfig`], kept in the secret store under the names today's shared secret
//! uses, says which provider [`Scheme`] an endpoint expects and which secrets are valid.
//! [`verify`] checks one [`VerifyRequest`] against it. A request passes if any secret
//! verifies, so secrets rotate without a window of rejected deliveries. Comparisons are
//! constant time, and no error carries a secret or an expected signature.

mod config;
mod error;
mod form;
mod github;
mod mac;
mod request;
mod scheme;
mod shopify;
mod slack;
mod standard_webhooks;
mod stripe;
#[cfg(test)]
mod testing;
mod token;
mod twilio;

pub use config::{ConfigError, VerifierConfig};
pub use error::VerifyError;
pub use request::{VerifyRequest, TIMESTAMP_TOLERANCE_SECS};
pub use scheme::Scheme;

/// Checks that `request` was sent by whoever holds one of `config`'s secrets, the way
/// `config`'s scheme signs. A config without secrets rejects every request.
pub fn verify(config: &VerifierConfig, request: &VerifyRequest<'_>) -> Result<(), VerifyError> {
    let secrets = config.secrets.as_slice();
    match config.scheme {
        Scheme::SharedSecret => token::verify_header(secrets, request),
        Scheme::Github => github::verify(secrets, request),
        Scheme::Stripe => stripe::verify(secrets, request),
        Scheme::Slack => slack::verify(secrets, request),
        Scheme::Shopify => shopify::verify(secrets, request),
        Scheme::StandardWebhooks => standard_webhooks::verify(secrets, request),
        Scheme::Twilio => twilio::verify(secrets, request),
        Scheme::Token => token::verify_query(secrets, request),
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{at, headers, URL};
    use super::*;

    const SECRET: &str = "s3cr3t-never-printed";

    fn check(config: &VerifierConfig, headers: &http::HeaderMap) -> Result<(), VerifyError> {
        let request = VerifyRequest {
            headers,
            body: b"{}",
            url: URL,
            now: at(1_700_000_000),
        };
        verify(config, &request)
    }

    #[test]
    fn a_plain_stored_secret_keeps_todays_x_webhook_secret_check() {
        let config = VerifierConfig::parse("abc123").unwrap();
        assert_eq!(
            check(&config, &headers(&[("X-Webhook-Secret", "abc123")])),
            Ok(())
        );
        assert_eq!(
            check(&config, &headers(&[("X-Webhook-Secret", "abc124")])),
            Err(VerifyError::BadToken)
        );
        assert_eq!(
            check(&config, &headers(&[])),
            Err(VerifyError::MissingHeader("X-Webhook-Secret"))
        );
    }

    #[test]
    fn a_config_without_secrets_rejects_everything() {
        let config = VerifierConfig {
            scheme: Scheme::SharedSecret,
            secrets: Vec::new(),
        };
        assert_eq!(
            check(&config, &headers(&[("X-Webhook-Secret", "")])),
            Err(VerifyError::BadToken)
        );
    }

    #[test]
    fn no_scheme_prints_its_secret_in_an_error_or_in_debug() {
        // Every signature and token header set to junk, so each scheme gets far enough to
        // compare against the secret before failing.
        let junk = headers(&[
            ("X-Webhook-Secret", "wrong"),
            ("X-Hub-Signature-256", "sha256=00"),
            ("Stripe-Signature", "t=1700000000,v1=00"),
            ("X-Slack-Signature", "v0=00"),
            ("X-Slack-Request-Timestamp", "1700000000"),
            ("X-Shopify-Hmac-Sha256", "AA=="),
            ("webhook-id", "msg_1"),
            ("webhook-timestamp", "1700000000"),
            ("webhook-signature", "v1,AA=="),
            ("X-Twilio-Signature", "AA=="),
        ]);
        for scheme in Scheme::ALL {
            let config = VerifierConfig {
                scheme,
                secrets: vec![SECRET.into()],
            };
            let error = check(&config, &junk).unwrap_err();
            for text in [
                error.to_string(),
                format!("{error:?}"),
                format!("{config:?}"),
            ] {
                assert!(!text.contains(SECRET), "{scheme}: {text}");
            }
        }
    }
}
