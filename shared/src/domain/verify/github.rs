//! GitHub: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>`. Jira admin
//! webhooks send the same form in the legacy `X-Hub-Signature` header.

use secrecy::SecretString;

use super::mac::{check_hmac, decode_hex, raw_keys, HmacSha256};
use super::{VerifyError, VerifyRequest};

const HEADER: &str = "X-Hub-Signature-256";
/// Read only when `HEADER` is absent, and only in its `sha256=` form: GitHub's own
/// `sha1=` signatures there are refused, SHA-1 being why GitHub added `HEADER`.
const LEGACY_HEADER: &str = "X-Hub-Signature";
const PREFIX: &str = "sha256=";

pub(super) fn verify(
    secrets: &[SecretString],
    request: &VerifyRequest<'_>,
) -> Result<(), VerifyError> {
    let (header, value) = match request.header(HEADER)? {
        Some(value) => (HEADER, value),
        None => match request.header(LEGACY_HEADER)? {
            Some(value) => (LEGACY_HEADER, value),
            None => return Err(VerifyError::MissingHeader(HEADER)),
        },
    };
    let signature = value
        .strip_prefix(PREFIX)
        .ok_or(VerifyError::MalformedHeader {
            header,
            reason: "expected sha256=<hex>",
        })?;
    let tag = decode_hex(header, signature)?;
    check_hmac::<HmacSha256, _>(raw_keys(secrets), &[request.body], &[tag])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::verify::testing::{at, check, headers, hmac_sha256, URL};
    use crate::domain::verify::Scheme;

    const SECRET: &str = "It's a Secret to Everybody";
    const BODY: &[u8] = b"Hello, World!";
    /// From GitHub's "Validating webhook deliveries" documentation.
    const DOCUMENTED: &str =
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    fn signed(secret: &str, body: &[u8]) -> String {
        format!(
            "sha256={}",
            hex::encode(hmac_sha256(secret.as_bytes(), body))
        )
    }

    fn verify_with(
        secrets: &[&str],
        pairs: &[(&str, &str)],
        body: &[u8],
    ) -> Result<(), VerifyError> {
        check(Scheme::Github, secrets, &headers(pairs), body, URL, at(0))
    }

    #[test]
    fn githubs_documented_example_verifies() {
        assert_eq!(signed(SECRET, BODY), DOCUMENTED);
        assert_eq!(
            verify_with(&[SECRET], &[(HEADER, DOCUMENTED)], BODY),
            Ok(())
        );
        let upper = format!("sha256={}", DOCUMENTED[7..].to_uppercase());
        assert_eq!(verify_with(&[SECRET], &[(HEADER, &upper)], BODY), Ok(()));
    }

    #[test]
    fn a_wrong_secret_or_a_tampered_body_is_a_bad_signature() {
        let error = verify_with(&["other"], &[(HEADER, DOCUMENTED)], BODY).unwrap_err();
        assert_eq!(error, VerifyError::BadSignature);
        assert!(!error.to_string().contains(&DOCUMENTED[7..]));
        assert_eq!(
            verify_with(&[SECRET], &[(HEADER, DOCUMENTED)], b"Hello, World?"),
            Err(VerifyError::BadSignature)
        );
    }

    #[test]
    fn the_second_of_two_secrets_verifies_during_a_rotation() {
        let value = signed("new", BODY);
        assert_eq!(
            verify_with(&["old", "new"], &[(HEADER, &value)], BODY),
            Ok(())
        );
    }

    #[test]
    fn a_missing_or_malformed_signature_is_reported_as_such() {
        assert_eq!(
            verify_with(&[SECRET], &[], BODY),
            Err(VerifyError::MissingHeader(HEADER))
        );
        for value in ["757107ea", "sha256=zz", "sha1=0123"] {
            assert!(
                matches!(
                    verify_with(&[SECRET], &[(HEADER, value)], BODY),
                    Err(VerifyError::MalformedHeader { .. })
                ),
                "{value}"
            );
        }
    }

    #[test]
    fn jira_signatures_in_the_legacy_header_verify_but_sha1_ones_do_not() {
        assert_eq!(
            verify_with(&[SECRET], &[(LEGACY_HEADER, DOCUMENTED)], BODY),
            Ok(())
        );
        assert_eq!(
            verify_with(&[SECRET], &[(LEGACY_HEADER, "sha1=0123abcd")], BODY),
            Err(VerifyError::MalformedHeader {
                header: LEGACY_HEADER,
                reason: "expected sha256=<hex>"
            })
        );
    }

    #[test]
    fn the_sha256_header_wins_over_the_legacy_one() {
        let pairs = [(HEADER, DOCUMENTED), (LEGACY_HEADER, "sha256=00")];
        assert_eq!(verify_with(&[SECRET], &pairs, BODY), Ok(()));
        let pairs = [(HEADER, "sha256=00"), (LEGACY_HEADER, DOCUMENTED)];
        assert_eq!(
            verify_with(&[SECRET], &pairs, BODY),
            Err(VerifyError::BadSignature)
        );
    }
}
