//! How a stored body is checked on the way in and shown on the way out.

use serde_json::value::RawValue;

/// How an item's payload appears in the consumer API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PayloadEncoding {
    /// Embedded as JSON, byte for byte as received.
    Json,
    /// A UTF-8 string (forms, XML, plain text).
    Text,
    /// Standard base64 of bytes that are not UTF-8.
    Base64,
}

/// Whether a `Content-Type` declares JSON: `application/json` or any `+json` type.
pub fn declares_json(content_type: Option<&str>) -> bool {
    let Some(parsed) = content_type.and_then(|ct| ct.parse::<mime::Mime>().ok()) else {
        return false;
    };
    parsed.type_() == mime::APPLICATION
        && (parsed.subtype() == mime::JSON || parsed.suffix() == Some(mime::JSON))
}

/// Checks that a body that declares JSON is JSON; the error says where it is not.
pub fn check_json(body: &[u8]) -> Result<(), String> {
    serde_json::from_slice::<serde::de::IgnoredAny>(body)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// A payload ready to be embedded in a response.
#[derive(Debug, serde::Serialize)]
#[serde(untagged)]
pub enum RenderedPayload {
    Json(Box<RawValue>),
    Text(String),
}

/// Renders a stored body: JSON bodies as the very JSON received, others as text, and bytes
/// that are not UTF-8 as base64, so nothing is ever lost on the way out.
pub fn render(content_type: Option<&str>, body: &[u8]) -> (PayloadEncoding, RenderedPayload) {
    use base64::Engine as _;
    match std::str::from_utf8(body) {
        Ok(text) => {
            if declares_json(content_type) {
                if let Ok(raw) = RawValue::from_string(text.to_owned()) {
                    return (PayloadEncoding::Json, RenderedPayload::Json(raw));
                }
            }
            (
                PayloadEncoding::Text,
                RenderedPayload::Text(text.to_owned()),
            )
        }
        Err(_) => (
            PayloadEncoding::Base64,
            RenderedPayload::Text(base64::engine::general_purpose::STANDARD.encode(body)),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_content_types_are_recognised() {
        assert!(declares_json(Some("application/json")));
        assert!(declares_json(Some("application/json; charset=utf-8")));
        assert!(declares_json(Some("application/vnd.github+json")));
        assert!(!declares_json(Some("application/x-www-form-urlencoded")));
        assert!(!declares_json(Some("text/plain")));
        assert!(!declares_json(None));
    }

    #[test]
    fn json_is_embedded_byte_for_byte() {
        let body = br#"{"b":1.50,"a":[true, null]}"#;
        let (encoding, rendered) = render(Some("application/json"), body);
        assert_eq!(encoding, PayloadEncoding::Json);
        let out = serde_json::to_string(&rendered).unwrap();
        assert_eq!(out.as_bytes(), body);
    }

    #[test]
    fn forms_are_text_and_binary_is_base64() {
        let (encoding, rendered) = render(Some("application/x-www-form-urlencoded"), b"a=1&b=2");
        assert_eq!(encoding, PayloadEncoding::Text);
        assert_eq!(serde_json::to_string(&rendered).unwrap(), r#""a=1&b=2""#);

        let (encoding, rendered) = render(Some("application/octet-stream"), &[0xff, 0x00]);
        assert_eq!(encoding, PayloadEncoding::Base64);
        assert_eq!(serde_json::to_string(&rendered).unwrap(), r#""/wA=""#);
    }

    #[test]
    fn invalid_json_is_explained() {
        assert!(check_json(br#"{"a":1}"#).is_ok());
        assert!(check_json(b"{nope").unwrap_err().contains("line 1"));
        assert!(check_json(b"").is_err());
    }
}
