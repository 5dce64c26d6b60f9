//! What of a request's headers is kept for debugging, and which header names a provider's
//! delivery id.

use std::collections::BTreeMap;

use http::{HeaderMap, HeaderName};

use super::item::DeliveryId;
use super::DomainError;

/// Stands in for the value of every header that may carry a credential.
pub const REDACTED: &str = "[redacted]";

/// Headers that carry credentials, by exact (lowercase) name.
const SENSITIVE_NAMES: [&str; 6] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-webhook-secret",
    "x-api-key",
];

/// Name fragments of signature and token headers (`X-Hub-Signature-256`,
/// `Stripe-Signature`, `X-Shopify-Hmac-Sha256`, `X-Gitlab-Token`…): a provider we have never
/// heard of still gets its credential redacted.
const SENSITIVE_FRAGMENTS: [&str; 7] = [
    "signature",
    "secret",
    "token",
    "hmac",
    "password",
    "api-key",
    "apikey",
];

/// Provider delivery-id headers, in order of preference.
pub const DELIVERY_ID_HEADERS: [&str; 4] = [
    "x-github-delivery",
    "webhook-id",
    "x-shopify-webhook-id",
    "idempotency-key",
];

/// The same headers as [`DELIVERY_ID_HEADERS`], parsed once: a lookup by `&str` parses the
/// name on every call.
const DELIVERY_ID_HEADER_NAMES: [HeaderName; 4] = [
    HeaderName::from_static(DELIVERY_ID_HEADERS[0]),
    HeaderName::from_static(DELIVERY_ID_HEADERS[1]),
    HeaderName::from_static(DELIVERY_ID_HEADERS[2]),
    HeaderName::from_static(DELIVERY_ID_HEADERS[3]),
];

fn is_sensitive(name: &str) -> bool {
    SENSITIVE_NAMES.contains(&name)
        || SENSITIVE_FRAGMENTS
            .iter()
            .any(|f| contains_fragment(name.as_bytes(), f.as_bytes()))
}

/// A plain scan: header names are short, and `str::contains` sets up a substring searcher
/// per call, which for every header of every request cost more than the scan.
fn contains_fragment(name: &[u8], fragment: &[u8]) -> bool {
    name.len() >= fragment.len() && name.windows(fragment.len()).any(|w| w == fragment)
}

/// The headers worth keeping for debugging: every header, lowercased, repeated values
/// joined with `, `, credentials replaced by [`REDACTED`].
pub fn redacted(headers: &HeaderMap) -> BTreeMap<String, String> {
    let mut kept: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in headers {
        let name = name.as_str();
        let value = if is_sensitive(name) {
            REDACTED.to_owned()
        } else {
            String::from_utf8_lossy(value.as_bytes()).into_owned()
        };
        kept.entry(name.to_owned())
            .and_modify(|existing| {
                if value != REDACTED {
                    existing.push_str(", ");
                    existing.push_str(&value);
                }
            })
            .or_insert(value);
    }
    kept
}

/// The provider's delivery id, from the first delivery-id header present.
pub fn delivery_id(headers: &HeaderMap) -> Result<Option<DeliveryId>, DomainError> {
    for name in &DELIVERY_ID_HEADER_NAMES {
        if let Some(value) = headers.get(name) {
            let name = name.as_str();
            let value = value.to_str().map_err(|_| {
                DomainError::new("delivery id", format!("{name} must be printable ASCII"))
            })?;
            return DeliveryId::parse(name, value).map(Some);
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn credentials_are_redacted_and_the_rest_kept() {
        let kept = redacted(&headers(&[
            ("content-type", "application/json"),
            ("x-webhook-secret", "abc123"),
            ("authorization", "Bearer t"),
            ("cookie", "session=1"),
            ("x-hub-signature-256", "sha256=ff"),
            ("stripe-signature", "t=1,v1=aa"),
            ("x-gitlab-token", "tok"),
            ("user-agent", "GitHub-Hookshot/1"),
        ]));
        assert_eq!(kept["content-type"], "application/json");
        assert_eq!(kept["user-agent"], "GitHub-Hookshot/1");
        for name in [
            "x-webhook-secret",
            "authorization",
            "cookie",
            "x-hub-signature-256",
            "stripe-signature",
            "x-gitlab-token",
        ] {
            assert_eq!(kept[name], REDACTED, "{name}");
        }
        assert!(!format!("{kept:?}").contains("abc123"));
    }

    #[test]
    fn fragments_are_found_anywhere_in_a_name() {
        for name in [
            "signature",
            "x-signature",
            "signature-256",
            "x-my-apikey-v2",
        ] {
            assert!(is_sensitive(name), "{name}");
        }
        for name in ["sig", "x-sign", "content-type", "token-"] {
            assert_eq!(is_sensitive(name), name == "token-", "{name}");
        }
        assert_eq!(
            DELIVERY_ID_HEADER_NAMES.map(|n| n.as_str().to_owned()),
            DELIVERY_ID_HEADERS
        );
    }

    #[test]
    fn repeated_headers_are_joined_not_dropped() {
        let kept = redacted(&headers(&[("x-tag", "a"), ("x-tag", "b")]));
        assert_eq!(kept["x-tag"], "a, b");
    }

    #[test]
    fn the_first_known_delivery_header_wins() {
        let id = delivery_id(&headers(&[
            ("idempotency-key", "key-1"),
            ("x-github-delivery", "gh-1"),
        ]))
        .unwrap();
        assert_eq!(id.unwrap().as_str(), "gh-1");
        assert!(delivery_id(&headers(&[])).unwrap().is_none());
    }
}
