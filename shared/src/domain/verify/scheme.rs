//! The provider signing schemes an endpoint can require.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::domain::DomainError;

/// How a provider proves a webhook came from it. Stored and shown as lowercase names
/// (`shared-secret`, `github`, `standard-webhooks`…).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scheme {
    /// The secret itself in `X-Webhook-Secret`, for senders we configure ourselves.
    SharedSecret,
    /// `X-Hub-Signature-256: sha256=<hex>` over the body; also Jira admin webhooks.
    Github,
    /// `Stripe-Signature: t=…,v1=<hex>` over `{t}.{body}`.
    Stripe,
    /// `X-Slack-Signature: v0=<hex>` over `v0:{timestamp}:{body}`.
    Slack,
    /// `X-Shopify-Hmac-Sha256: <base64>` over the body.
    Shopify,
    /// The Standard Webhooks spec (OpenAI, Replicate, Svix): `webhook-signature: v1,<base64>`
    /// over `{id}.{timestamp}.{body}`.
    StandardWebhooks,
    /// `X-Twilio-Signature: <base64>` HMAC-SHA1 over the URL and the form parameters.
    Twilio,
    /// A `token` query parameter on the webhook URL, for providers that sign nothing (put.io).
    Token,
}

impl Scheme {
    /// Every scheme, in declaration order.
    pub const ALL: [Scheme; 8] = [
        Scheme::SharedSecret,
        Scheme::Github,
        Scheme::Stripe,
        Scheme::Slack,
        Scheme::Shopify,
        Scheme::StandardWebhooks,
        Scheme::Twilio,
        Scheme::Token,
    ];

    /// The scheme's stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::SharedSecret => "shared-secret",
            Scheme::Github => "github",
            Scheme::Stripe => "stripe",
            Scheme::Slack => "slack",
            Scheme::Shopify => "shopify",
            Scheme::StandardWebhooks => "standard-webhooks",
            Scheme::Twilio => "twilio",
            Scheme::Token => "token",
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scheme {
    type Err = DomainError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Scheme::ALL
            .into_iter()
            .find(|scheme| scheme.as_str() == value)
            .ok_or_else(|| DomainError::new("scheme", UNKNOWN_SCHEME))
    }
}

/// Does not echo the value: a secret pasted into the wrong field must not reach a log.
pub(super) const UNKNOWN_SCHEME: &str = "unknown scheme, expected one of shared-secret, \
     github, stripe, slack, shopify, standard-webhooks, twilio, token";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scheme_round_trips_through_its_name_and_its_json_form() {
        for scheme in Scheme::ALL {
            assert_eq!(scheme.as_str().parse::<Scheme>().unwrap(), scheme);
            let json = serde_json::to_string(&scheme).unwrap();
            assert_eq!(json, format!("\"{scheme}\""));
            assert_eq!(serde_json::from_str::<Scheme>(&json).unwrap(), scheme);
        }
    }

    #[test]
    fn unknown_names_are_refused_and_the_error_lists_every_scheme() {
        let error = "GitHub".parse::<Scheme>().unwrap_err();
        assert!(!error.to_string().contains("GitHub"));
        for scheme in Scheme::ALL {
            assert!(UNKNOWN_SCHEME.contains(scheme.as_str()), "{scheme}");
        }
    }
}
