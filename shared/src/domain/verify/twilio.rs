//! Twilio: `X-Twilio-Signature: <base64 HMAC-SHA1>` keyed with the auth token, over the URL
//! followed, for form posts, by every parameter sorted by name as `{name}{value}`. JSON posts
//! instead carry `bodySHA256=<hex>` in the URL's query, and only the URL is signed.

use http::header::CONTENT_TYPE;
use secrecy::SecretString;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::mac::{decode_base64, hmac_matches, raw_keys, HmacSha1};
use super::{form, VerifyError, VerifyRequest};

const HEADER: &str = "X-Twilio-Signature";
const BODY_HASH_PARAM: &str = "bodySHA256";
const FORM: &str = "application/x-www-form-urlencoded";

pub(super) fn verify(
    secrets: &[SecretString],
    request: &VerifyRequest<'_>,
) -> Result<(), VerifyError> {
    let tag = decode_base64(HEADER, request.required_header(HEADER)?)?;
    let params = match form::query_param(request.url, BODY_HASH_PARAM) {
        Some(hash) => {
            check_body_hash(&hash, request.body)?;
            Vec::new()
        }
        None if is_form(request) => sorted_params(request.body),
        None => Vec::new(),
    };
    let params: Vec<&[u8]> = params
        .iter()
        .flat_map(|(name, value)| [name.as_slice(), value.as_slice()])
        .collect();
    let toggled = toggled_port(request.url);
    let urls = std::iter::once(request.url).chain(toggled.as_deref());
    for url in urls {
        let mut message = Vec::with_capacity(1 + params.len());
        message.push(url.as_bytes());
        message.extend_from_slice(&params);
        if hmac_matches::<HmacSha1, _>(raw_keys(secrets), &message, std::slice::from_ref(&tag)) {
            return Ok(());
        }
    }
    Err(VerifyError::BadSignature)
}

/// The body must hash to the URL's `bodySHA256`; the signature covers only the URL, so this
/// is what ties the body to it.
fn check_body_hash(expected_hex: &[u8], body: &[u8]) -> Result<(), VerifyError> {
    let actual = Sha256::digest(body);
    match hex::decode(expected_hex) {
        Ok(expected) if bool::from(expected.ct_eq(actual.as_slice())) => Ok(()),
        _ => Err(VerifyError::BadSignature),
    }
}

fn is_form(request: &VerifyRequest<'_>) -> bool {
    let Some(Ok(content_type)) = request.headers.get(CONTENT_TYPE).map(|v| v.to_str()) else {
        return false;
    };
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    essence.eq_ignore_ascii_case(FORM)
}

/// Sorted by name, then by value for repeated names, as Twilio's own validators do.
fn sorted_params(body: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut params = form::pairs(body);
    params.sort();
    params
}

/// The URL with the default port added when it has no port, or its port removed when it has
/// one. Whether Twilio's signature includes the port depends on how the webhook URL was
/// entered in the console, so Twilio's own validators try both forms.
fn toggled_port(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "https" => "443",
        "http" => "80",
        _ => return None,
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let host_start = authority.rfind('@').map_or(0, |at| at + 1);
    let (userinfo, host_port) = authority.split_at(host_start);
    // An IPv6 literal's colons are inside its brackets; only one after them starts a port.
    let port_colon = match host_port.rfind(']') {
        Some(bracket) => host_port[bracket..].find(':').map(|i| bracket + i),
        None => host_port.find(':'),
    };
    let host_and_port = match port_colon {
        Some(colon) => host_port[..colon].to_owned(),
        None => format!("{host_port}:{default_port}"),
    };
    Some(format!("{scheme}://{userinfo}{host_and_port}{tail}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::verify::testing::{at, base64, check, headers, hmac_sha1};
    use crate::domain::verify::Scheme;

    const TOKEN: &str = "12345";
    const URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";
    /// Twilio's "Webhooks security" documentation example.
    const DOCUMENTED_BODY: &[u8] = b"CallSid=CA1234567890ABCDE&Caller=%2B12349013030&Digits=1234&From=%2B12349013030&To=%2B18005551212";
    const DOCUMENTED_SIGNATURE: &str = "0/KCTR6DLpKmkAf8muzZqo1nDgQ=";

    fn verify_form(
        secrets: &[&str],
        signature: &str,
        url: &str,
        body: &[u8],
    ) -> Result<(), VerifyError> {
        let headers = headers(&[
            (HEADER, signature),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ]);
        check(Scheme::Twilio, secrets, &headers, body, url, at(0))
    }

    fn verify_json(
        secrets: &[&str],
        signature: &str,
        url: &str,
        body: &[u8],
    ) -> Result<(), VerifyError> {
        let headers = headers(&[(HEADER, signature), ("Content-Type", "application/json")]);
        check(Scheme::Twilio, secrets, &headers, body, url, at(0))
    }

    #[test]
    fn twilios_documented_example_verifies() {
        assert_eq!(
            verify_form(&[TOKEN], DOCUMENTED_SIGNATURE, URL, DOCUMENTED_BODY),
            Ok(())
        );
        // Parameter order on the wire does not matter: they are sorted before signing.
        let reordered = b"To=%2B18005551212&Digits=1234&From=%2B12349013030&Caller=%2B12349013030&CallSid=CA1234567890ABCDE";
        assert_eq!(
            verify_form(&[TOKEN], DOCUMENTED_SIGNATURE, URL, reordered),
            Ok(())
        );
    }

    #[test]
    fn twilio_pythons_vectors_verify_including_repeated_params_and_ports() {
        // From twilio-python's tests/unit/test_request_validator.py.
        let body = b"CallSid=CA1234567890ABCDE&Digits=1234&From=%2B14158675309&To=%2B18005551212&Caller=%2B14158675309";
        assert_eq!(
            verify_form(&[TOKEN], "RSOYDt4T1cUTdK1PDd93/VVr8B8=", URL, body),
            Ok(())
        );
        let repeated = b"Sid=CA123&SidAccount=AC123&Digits=5678&Digits=1234";
        assert_eq!(
            verify_form(&[TOKEN], "IK+Dwps556ElfBT0I3Rgjkr1wJU=", URL, repeated),
            Ok(())
        );
        let with_port = URL.replace(".com", ".com:1234");
        assert_eq!(
            verify_form(&[TOKEN], "RSOYDt4T1cUTdK1PDd93/VVr8B8=", &with_port, body),
            Ok(())
        );
        assert_eq!(
            verify_form(&[TOKEN], "kvajT1Ptam85bY51eRf/AJRuM3w=", URL, body),
            Ok(())
        );
        let http = URL.replace("https", "http");
        assert_eq!(
            verify_form(&[TOKEN], "0ZXoZLH/DfblKGATFgpif+LLRf4=", &http, body),
            Ok(())
        );
    }

    #[test]
    fn a_json_body_is_tied_to_the_url_by_its_hash() {
        // twilio-python's JSON vector.
        let body = br#"{"property": "value", "boolean": true}"#;
        let url = format!(
            "{URL}&bodySHA256=0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620"
        );
        assert_eq!(
            verify_json(&[TOKEN], "a9nBmqA0ju/hNViExpshrM61xv4=", &url, body),
            Ok(())
        );
        let tampered = br#"{"property": "value", "boolean": false}"#;
        assert_eq!(
            verify_json(&[TOKEN], "a9nBmqA0ju/hNViExpshrM61xv4=", &url, tampered),
            Err(VerifyError::BadSignature)
        );
    }

    #[test]
    fn a_wrong_token_or_a_tampered_param_or_url_is_a_bad_signature() {
        let bad = Err(VerifyError::BadSignature);
        assert_eq!(
            verify_form(&["54321"], DOCUMENTED_SIGNATURE, URL, DOCUMENTED_BODY),
            bad
        );
        let tampered = [DOCUMENTED_BODY, b"&Extra=1"].concat();
        assert_eq!(
            verify_form(&[TOKEN], DOCUMENTED_SIGNATURE, URL, &tampered),
            bad
        );
        let other_url = URL.replace("foo=1", "foo=2");
        assert_eq!(
            verify_form(&[TOKEN], DOCUMENTED_SIGNATURE, &other_url, DOCUMENTED_BODY),
            bad
        );
        // The same params in a JSON post are not signed, so they do not count.
        assert_eq!(
            verify_json(&[TOKEN], DOCUMENTED_SIGNATURE, URL, DOCUMENTED_BODY),
            bad
        );
    }

    #[test]
    fn the_second_of_two_tokens_verifies_during_a_rotation() {
        assert_eq!(
            verify_form(&["old", TOKEN], DOCUMENTED_SIGNATURE, URL, DOCUMENTED_BODY),
            Ok(())
        );
    }

    #[test]
    fn a_get_request_signs_the_url_alone() {
        let url = "https://mycompany.com/status?CallSid=CA1&CallStatus=completed";
        let signature = base64(&hmac_sha1(TOKEN.as_bytes(), url.as_bytes()));
        let headers = headers(&[(HEADER, &signature)]);
        assert_eq!(
            check(Scheme::Twilio, &[TOKEN], &headers, b"", url, at(0)),
            Ok(())
        );
    }

    #[test]
    fn a_missing_or_non_base64_header_is_reported_as_such() {
        let result = check(
            Scheme::Twilio,
            &[TOKEN],
            &headers(&[]),
            DOCUMENTED_BODY,
            URL,
            at(0),
        );
        assert_eq!(result, Err(VerifyError::MissingHeader(HEADER)));
        assert!(matches!(
            verify_form(&[TOKEN], "not base64!", URL, DOCUMENTED_BODY),
            Err(VerifyError::MalformedHeader { .. })
        ));
    }

    #[test]
    fn the_port_is_added_or_removed_but_nothing_else_changes() {
        let cases = [
            ("https://h.example/p?q=1", "https://h.example:443/p?q=1"),
            ("http://h.example", "http://h.example:80"),
            ("https://h.example:8443/p", "https://h.example/p"),
            ("https://u:pw@h.example/p", "https://u:pw@h.example:443/p"),
            ("https://[::1]:8443/p", "https://[::1]/p"),
            ("https://[::1]/p", "https://[::1]:443/p"),
        ];
        for (url, toggled) in cases {
            assert_eq!(toggled_port(url).as_deref(), Some(toggled), "{url}");
        }
        assert_eq!(toggled_port("ftp://h.example/p"), None);
        assert_eq!(toggled_port("not a url"), None);
    }
}
