//! Which scheme an endpoint verifies with and which secrets are valid, as stored.

use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use super::scheme::UNKNOWN_SCHEME;
use super::standard_webhooks;
use super::Scheme;

/// How one endpoint's webhooks are verified: a scheme and every secret valid right now.
///
/// During a rotation both the old and the new secret are listed; a request passes if any
/// of them verifies. `Debug` shows the secrets as `[REDACTED]`.
#[derive(Debug, Clone)]
pub struct VerifierConfig {
    /// How the provider signs.
    pub scheme: Scheme,
    /// Every secret accepted right now; empty rejects every request.
    pub secrets: Vec<SecretString>,
}

/// A stored verifier config that cannot be used. The operator's fault, not the sender's,
/// so worth a 500 and a log line rather than a 4xx. Never contains a secret: every reason
/// is static text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid verifier config: {reason}")]
pub struct ConfigError {
    /// What is wrong, in static text.
    pub reason: &'static str,
}

impl VerifierConfig {
    /// Parses a value from the secret store.
    ///
    /// A plain string is one shared secret checked against `X-Webhook-Secret`, which is what
    /// `WEBHOOK_SECRET_{agent}_{source}=abc123` has always meant. A value starting with `{`
    /// is a JSON object: `{"scheme": "github", "secrets": ["s1", "s2"]}`, or `"secret": "s1"`
    /// for a single one.
    pub fn parse(value: &str) -> Result<Self, ConfigError> {
        if !value.trim_start().starts_with('{') {
            return Ok(Self {
                scheme: Scheme::SharedSecret,
                secrets: vec![secret(Some(value))?],
            });
        }
        // serde_json's own messages quote the offending value, which may be a secret, so
        // they are replaced by ours.
        let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(value) else {
            return Err(invalid("a value starting with { must be a JSON object"));
        };
        let mut scheme = None;
        let mut secrets = None;
        for (key, field) in &fields {
            match key.as_str() {
                "scheme" => {
                    let name = field.as_str().ok_or(invalid("scheme must be a string"))?;
                    scheme = Some(
                        name.parse::<Scheme>()
                            .map_err(|_| invalid(UNKNOWN_SCHEME))?,
                    );
                }
                "secret" | "secrets" if secrets.is_some() => {
                    return Err(invalid("give either secret or secrets, not both"));
                }
                "secret" => secrets = Some(vec![secret(field.as_str())?]),
                "secrets" => secrets = Some(secret_list(field)?),
                _ => {
                    return Err(invalid(
                        "unknown field, expected scheme and secrets (or secret)",
                    ))
                }
            }
        }
        let scheme = scheme.ok_or(invalid("missing scheme"))?;
        let secrets = secrets.ok_or(invalid("missing secrets"))?;
        if scheme == Scheme::StandardWebhooks
            && secrets
                .iter()
                .any(|s| standard_webhooks::signing_key(s.expose_secret()).is_none())
        {
            return Err(invalid(
                "standard-webhooks secrets must be base64, optionally prefixed with whsec_",
            ));
        }
        Ok(Self { scheme, secrets })
    }
}

fn invalid(reason: &'static str) -> ConfigError {
    ConfigError { reason }
}

fn secret(value: Option<&str>) -> Result<SecretString, ConfigError> {
    match value {
        Some("") => Err(invalid("secrets must not be empty")),
        Some(value) => Ok(SecretString::from(value)),
        None => Err(invalid("secrets must be strings")),
    }
}

fn secret_list(field: &Value) -> Result<Vec<SecretString>, ConfigError> {
    let items = field
        .as_array()
        .ok_or(invalid("secrets must be an array of strings"))?;
    if items.is_empty() {
        return Err(invalid("secrets must list at least one secret"));
    }
    items.iter().map(|item| secret(item.as_str())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exposed(config: &VerifierConfig) -> Vec<&str> {
        config.secrets.iter().map(|s| s.expose_secret()).collect()
    }

    #[test]
    fn a_plain_string_is_one_shared_secret_taken_verbatim() {
        let config = VerifierConfig::parse(" abc123 ").unwrap();
        assert_eq!(config.scheme, Scheme::SharedSecret);
        assert_eq!(exposed(&config), [" abc123 "]);
    }

    #[test]
    fn a_json_object_names_the_scheme_and_one_or_more_secrets() {
        let config =
            VerifierConfig::parse(r#"{"scheme": "github", "secrets": ["s1", "s2"]}"#).unwrap();
        assert_eq!(config.scheme, Scheme::Github);
        assert_eq!(exposed(&config), ["s1", "s2"]);

        let config = VerifierConfig::parse(r#"{"scheme": "stripe", "secret": "whsec_x"}"#).unwrap();
        assert_eq!(config.scheme, Scheme::Stripe);
        assert_eq!(exposed(&config), ["whsec_x"]);
    }

    #[test]
    fn unusable_configs_are_refused() {
        for value in [
            "",
            "{not json",
            r#"{"secrets": ["s1"]}"#,
            r#"{"scheme": "github"}"#,
            r#"{"scheme": "GitHub", "secret": "s1"}"#,
            r#"{"scheme": "github", "secrets": []}"#,
            r#"{"scheme": "github", "secrets": [""]}"#,
            r#"{"scheme": "github", "secrets": [1]}"#,
            r#"{"scheme": "github", "secret": "s1", "secrets": ["s2"]}"#,
            r#"{"scheme": "github", "secret": "s1", "secert": "s2"}"#,
            r#"{"scheme": "standard-webhooks", "secret": "whsec_not*base64"}"#,
        ] {
            assert!(VerifierConfig::parse(value).is_err(), "{value}");
        }
    }

    #[test]
    fn standard_webhooks_secrets_may_omit_the_whsec_prefix() {
        for secret in [
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        ] {
            let value = format!(r#"{{"scheme": "standard-webhooks", "secret": "{secret}"}}"#);
            assert!(VerifierConfig::parse(&value).is_ok(), "{secret}");
        }
    }

    #[test]
    fn neither_errors_nor_debug_output_show_a_secret() {
        let secret = "s3cr3t-never-printed";
        let config =
            VerifierConfig::parse(&format!(r#"{{"scheme": "slack", "secret": "{secret}"}}"#))
                .unwrap();
        assert!(!format!("{config:?}").contains(secret));
        for value in [
            format!(r#"{{"scheme": "slack", "secrets": "{secret}"}}"#),
            format!(r#"{{"scheme": "slack", "secret": ["{secret}"]}}"#),
            format!(r#"{{"scheme": "{secret}", "secret": "x"}}"#),
            format!(r#"{{"scheme": "slack", "{secret}": "x"}}"#),
            format!(r#"{{"scheme": "slack", "secret": "{secret}""#),
        ] {
            let error = VerifierConfig::parse(&value).unwrap_err();
            assert!(!error.to_string().contains(secret), "{error}");
            assert!(!format!("{error:?}").contains(secret), "{error:?}");
        }
    }
}
