//! Shopify: `X-Shopify-Hmac-Sha256: <base64 HMAC-SHA256 of the body>`. Shopify signs no
//! timestamp, so nothing here stops a replay; the delivery id
//! (`X-Shopify-Webhook-Id`) is what deduplicates.

use secrecy::SecretString;

use super::mac::{check_hmac, decode_base64, raw_keys, HmacSha256};
use super::{VerifyError, VerifyRequest};

const HEADER: &str = "X-Shopify-Hmac-Sha256";

pub(super) fn verify(
    secrets: &[SecretString],
    request: &VerifyRequest<'_>,
) -> Result<(), VerifyError> {
    let tag = decode_base64(HEADER, request.required_header(HEADER)?)?;
    check_hmac::<HmacSha256, _>(raw_keys(secrets), &[request.body], &[tag])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::verify::testing::{at, base64, check, headers, hmac_sha256, URL};
    use crate::domain::verify::Scheme;

    const BODY: &[u8] = br#"{"id":820982911946154508,"email":"jon@example.com"}"#;

    fn signed(secret: &str, body: &[u8]) -> String {
        base64(&hmac_sha256(secret.as_bytes(), body))
    }

    fn verify_with(
        secrets: &[&str],
        pairs: &[(&str, &str)],
        body: &[u8],
    ) -> Result<(), VerifyError> {
        check(Scheme::Shopify, secrets, &headers(pairs), body, URL, at(0))
    }

    #[test]
    fn a_body_signed_with_the_secret_verifies() {
        let signature = signed("shpss_secret", BODY);
        assert_eq!(
            verify_with(&["shpss_secret"], &[(HEADER, &signature)], BODY),
            Ok(())
        );
    }

    #[test]
    fn a_wrong_secret_or_a_tampered_body_is_a_bad_signature() {
        let signature = signed("shpss_secret", BODY);
        let bad = Err(VerifyError::BadSignature);
        assert_eq!(
            verify_with(&["shpss_other"], &[(HEADER, &signature)], BODY),
            bad
        );
        assert_eq!(
            verify_with(&["shpss_secret"], &[(HEADER, &signature)], b"{}"),
            bad
        );
    }

    #[test]
    fn the_second_of_two_secrets_verifies_during_a_rotation() {
        let signature = signed("new", BODY);
        assert_eq!(
            verify_with(&["old", "new"], &[(HEADER, &signature)], BODY),
            Ok(())
        );
    }

    #[test]
    fn a_missing_or_non_base64_header_is_reported_as_such() {
        assert_eq!(
            verify_with(&["s"], &[], BODY),
            Err(VerifyError::MissingHeader(HEADER))
        );
        // Hex digits happen to be base64 too, but decode to different bytes.
        let hex = hex::encode(hmac_sha256(b"s", BODY));
        assert_eq!(
            verify_with(&["s"], &[(HEADER, &hex)], BODY),
            Err(VerifyError::BadSignature)
        );
        assert!(matches!(
            verify_with(&["s"], &[(HEADER, "not base64!")], BODY),
            Err(VerifyError::MalformedHeader { .. })
        ));
    }
}
