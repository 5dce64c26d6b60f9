//! Where deliveries go: a checked subscriber URL, and the addresses a delivery must never
//! connect to.

mod address;

use std::fmt;
use std::net::IpAddr;

use http::Uri;
use serde::{Serialize, Serializer};

pub use address::is_forbidden_address;

use crate::domain::DomainError;

/// Longest accepted target URL, in bytes.
pub const MAX_URL_LEN: usize = 2048;

/// A subscriber's endpoint: an absolute `https` URL (or `http` where allowed) with a host
/// and no credentials.
///
/// Only the syntax is checked here. Whether the host resolves to a forbidden address is
/// decided when connecting ([`is_forbidden_address`]), since DNS can change after
/// creation.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TargetUrl {
    url: String,
    uri: Uri,
}

impl TargetUrl {
    /// Parses a subscriber URL. `allow_insecure` also accepts `http`, for local development
    /// and tests; production subscribers get TLS.
    pub fn parse(value: &str, allow_insecure: bool) -> Result<Self, DomainError> {
        let invalid = |reason: &str| DomainError::new("url", reason);
        if value.len() > MAX_URL_LEN {
            return Err(invalid(&format!(
                "must be at most {MAX_URL_LEN} characters"
            )));
        }
        if !value.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(invalid(
                "must be ASCII without spaces; percent-encode other characters",
            ));
        }
        // A fragment is never sent, so a URL with one is not what the user thinks it is.
        if value.contains('#') {
            return Err(invalid("must not have a fragment"));
        }
        let uri: Uri = value
            .parse()
            .map_err(|_| invalid("must be an absolute URL"))?;
        match uri.scheme_str().map(str::to_ascii_lowercase).as_deref() {
            Some("https") => {}
            Some("http") if allow_insecure => {}
            Some("http") => return Err(invalid("must use https")),
            _ => return Err(invalid("must be an https URL")),
        }
        let authority = uri.authority().ok_or_else(|| invalid("must have a host"))?;
        // Credentials in the URL would be stored and shown with it; receivers that need
        // them check our signatures instead.
        if authority.as_str().contains('@') {
            return Err(invalid("must not contain a user name or password"));
        }
        if authority.host().is_empty() || authority.host() == "[]" {
            return Err(invalid("must have a host"));
        }
        Ok(Self {
            url: value.to_owned(),
            uri,
        })
    }

    /// The URL as the user gave it.
    pub fn as_str(&self) -> &str {
        &self.url
    }

    /// The host, without the brackets of an IPv6 literal: a name to resolve or an address.
    pub fn host(&self) -> &str {
        let host = self.uri.host().unwrap_or_default();
        host.strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host)
    }

    /// The port to connect to: the URL's own, else 443 for https and 80 for http.
    pub fn port(&self) -> u16 {
        self.uri
            .port_u16()
            .unwrap_or(if self.is_https() { 443 } else { 80 })
    }

    /// Whether the URL uses TLS.
    pub fn is_https(&self) -> bool {
        self.uri
            .scheme_str()
            .is_some_and(|s| s.eq_ignore_ascii_case("https"))
    }

    /// The host when it is an IP literal, which needs no resolving to be checked.
    pub fn ip(&self) -> Option<IpAddr> {
        self.host().parse().ok()
    }

    /// The parsed URL.
    pub fn uri(&self) -> &Uri {
        &self.uri
    }
}

impl fmt::Display for TargetUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url)
    }
}

impl Serialize for TargetUrl {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(value: &str) -> Result<TargetUrl, DomainError> {
        TargetUrl::parse(value, false)
    }

    #[test]
    fn https_urls_parse_and_keep_their_spelling() {
        let url = parse("https://your-app.com/webhooks/nexus?x=1").unwrap();
        assert_eq!(url.as_str(), "https://your-app.com/webhooks/nexus?x=1");
        assert_eq!(url.to_string(), url.as_str());
        assert_eq!(url.host(), "your-app.com");
        assert_eq!(url.port(), 443);
        assert!(url.is_https());
        assert_eq!(url.ip(), None);
        assert_eq!(
            serde_json::to_string(&url).unwrap(),
            "\"https://your-app.com/webhooks/nexus?x=1\""
        );
        assert_eq!(parse("HTTPS://example.com").unwrap().port(), 443);
        assert_eq!(parse("https://example.com:8443").unwrap().port(), 8443);
    }

    #[test]
    fn plain_http_is_accepted_only_when_allowed() {
        let error = parse("http://127.0.0.1:8080/hook").unwrap_err();
        assert_eq!(error, DomainError::new("url", "must use https"));
        let url = TargetUrl::parse("http://127.0.0.1:8080/hook", true).unwrap();
        assert_eq!(url.port(), 8080);
        assert!(!url.is_https());
        assert_eq!(url.ip(), Some("127.0.0.1".parse().unwrap()));
        assert_eq!(
            TargetUrl::parse("http://localhost", true).unwrap().port(),
            80
        );
    }

    #[test]
    fn ipv6_literals_give_their_address_without_brackets() {
        let url = parse("https://[2001:db8::1]:9000/x").unwrap();
        assert_eq!(url.host(), "2001:db8::1");
        assert_eq!(url.ip(), Some("2001:db8::1".parse().unwrap()));
        assert_eq!(url.port(), 9000);
    }

    #[test]
    fn other_schemes_relative_urls_and_hostless_urls_are_refused() {
        for bad in [
            "",
            "your-app.com/hook",
            "/hook",
            "ftp://example.com/",
            "file:///etc/passwd",
            "ws://example.com",
            "https://",
            "https:///path",
            "https://:443/",
            "https://exa mple.com",
            "https://example.com/ü",
        ] {
            assert!(TargetUrl::parse(bad, true).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn credentials_fragments_and_long_urls_are_refused() {
        for bad in [
            "https://user:pass@example.com/",
            "https://user@example.com/",
            "https://example.com/#frag",
        ] {
            assert_eq!(parse(bad).unwrap_err().field, "url", "{bad}");
        }
        let base = "https://example.com/";
        let fits = format!("{base}{}", "a".repeat(MAX_URL_LEN - base.len()));
        assert!(parse(&fits).is_ok());
        assert!(parse(&format!("{fits}a")).is_err());
    }
}
