//! Stripe: `Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>][,v0=<hex>]`, HMAC-SHA256 over
//! `{t}.{body}` keyed with the whole `whsec_…` string.

use secrecy::SecretString;

use super::mac::{check_hmac, decode_hex, raw_keys, HmacSha256};
use super::{VerifyError, VerifyRequest};

const HEADER: &str = "Stripe-Signature";

pub(super) fn verify(
    secrets: &[SecretString],
    request: &VerifyRequest<'_>,
) -> Result<(), VerifyError> {
    let value = request.required_header(HEADER)?;
    let mut timestamp = None;
    let mut tags = Vec::new();
    for item in value.split(',') {
        match item.trim().split_once('=') {
            Some(("t", t)) if timestamp.is_none() => timestamp = Some(t),
            // Stripe signs with several v1 values while a secret is being rolled.
            Some(("v1", signature)) => tags.push(decode_hex(HEADER, signature)?),
            // v0 is Stripe's test-mode legacy scheme; unknown schemes may come later.
            _ => {}
        }
    }
    let malformed = |reason| VerifyError::MalformedHeader {
        header: HEADER,
        reason,
    };
    let timestamp = timestamp.ok_or(malformed("no t= timestamp"))?;
    if tags.is_empty() {
        return Err(malformed("no v1= signature"));
    }
    request.check_timestamp(HEADER, timestamp)?;
    let message = [timestamp.as_bytes(), b".", request.body];
    check_hmac::<HmacSha256, _>(raw_keys(secrets), &message, &tags)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::verify::testing::{at, check, headers, hmac_sha256, URL};
    use crate::domain::verify::Scheme;

    const SECRET: &str = "whsec_test_secret";
    const BODY: &[u8] = br#"{"id":"evt_1","object":"event"}"#;
    const T: i64 = 1_700_000_000;

    fn v1(secret: &str, t: i64, body: &[u8]) -> String {
        let message = [t.to_string().as_bytes(), b".", body].concat();
        hex::encode(hmac_sha256(secret.as_bytes(), &message))
    }

    fn verify_with(
        secrets: &[&str],
        value: &str,
        body: &[u8],
        now: i64,
    ) -> Result<(), VerifyError> {
        check(
            Scheme::Stripe,
            secrets,
            &headers(&[(HEADER, value)]),
            body,
            URL,
            at(now),
        )
    }

    #[test]
    fn a_signature_made_with_the_whole_whsec_string_verifies() {
        let value = format!("t={T},v1={},v0=00", v1(SECRET, T, BODY));
        assert_eq!(verify_with(&[SECRET], &value, BODY, T + 10), Ok(()));
        // Stripe keys with the `whsec_` string itself, not its decoding.
        let value = format!("t={T},v1={}", v1("test_secret", T, BODY));
        assert_eq!(
            verify_with(&[SECRET], &value, BODY, T),
            Err(VerifyError::BadSignature)
        );
    }

    #[test]
    fn a_wrong_secret_or_a_tampered_body_or_timestamp_is_a_bad_signature() {
        let signature = v1(SECRET, T, BODY);
        let value = format!("t={T},v1={signature}");
        let error = verify_with(&["whsec_other"], &value, BODY, T).unwrap_err();
        assert_eq!(error, VerifyError::BadSignature);
        assert!(!error.to_string().contains(&signature));
        assert_eq!(
            verify_with(&[SECRET], &value, b"{}", T),
            Err(VerifyError::BadSignature)
        );
        let moved = format!("t={},v1={signature}", T + 1);
        assert_eq!(
            verify_with(&[SECRET], &moved, BODY, T),
            Err(VerifyError::BadSignature)
        );
    }

    #[test]
    fn any_v1_may_match_and_v0_never_does() {
        let good = v1(SECRET, T, BODY);
        let value = format!("t={T},v1={},v1={good}", "00".repeat(32));
        assert_eq!(verify_with(&[SECRET], &value, BODY, T), Ok(()));
        let value = format!("t={T},v0={good}");
        assert!(matches!(
            verify_with(&[SECRET], &value, BODY, T),
            Err(VerifyError::MalformedHeader { .. })
        ));
    }

    #[test]
    fn the_second_of_two_secrets_verifies_during_a_rotation() {
        let value = format!("t={T},v1={}", v1("whsec_new", T, BODY));
        assert_eq!(
            verify_with(&["whsec_old", "whsec_new"], &value, BODY, T),
            Ok(())
        );
    }

    #[test]
    fn stale_and_future_timestamps_are_refused_even_when_signed() {
        let value = format!("t={T},v1={}", v1(SECRET, T, BODY));
        let stale = Err(VerifyError::StaleTimestamp {
            header: HEADER,
            tolerance_secs: 300,
        });
        assert_eq!(verify_with(&[SECRET], &value, BODY, T + 301), stale);
        assert_eq!(verify_with(&[SECRET], &value, BODY, T - 301), stale);
    }

    #[test]
    fn a_missing_or_malformed_header_is_reported_as_such() {
        let error = check(Scheme::Stripe, &[SECRET], &headers(&[]), BODY, URL, at(T));
        assert_eq!(error, Err(VerifyError::MissingHeader(HEADER)));
        for value in [
            "v1=00",
            "t=1700000000",
            "t=soon,v1=00",
            "t=1700000000,v1=xyz",
        ] {
            assert!(
                matches!(
                    verify_with(&[SECRET], value, BODY, T),
                    Err(VerifyError::MalformedHeader { .. })
                ),
                "{value}"
            );
        }
    }
}
