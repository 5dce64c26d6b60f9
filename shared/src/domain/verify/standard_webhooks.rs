//! Standard Webhooks (OpenAI, Replicate, Svix): `webhook-id`, `webhook-timestamp` and
//! `webhook-signature: v1,<base64> [v1,<base64>…]`, HMAC-SHA256 over `{id}.{timestamp}.{body}`
//! keyed with the base64-decoded `whsec_…` secret.
//!
//! Providers on Svix's older branding (Clerk, Resend) send the same headers as `svix-*`;
//! those are read when `webhook-id` is absent.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use secrecy::{ExposeSecret, SecretSlice, SecretString};

use super::mac::{check_hmac, decode_base64, HmacSha256};
use super::{VerifyError, VerifyRequest};

/// One branding's header names.
struct Headers {
    id: &'static str,
    timestamp: &'static str,
    signature: &'static str,
}

const STANDARD_HEADERS: Headers = Headers {
    id: "webhook-id",
    timestamp: "webhook-timestamp",
    signature: "webhook-signature",
};

const SVIX_HEADERS: Headers = Headers {
    id: "svix-id",
    timestamp: "svix-timestamp",
    signature: "svix-signature",
};

const SECRET_PREFIX: &str = "whsec_";

pub(super) fn verify(
    secrets: &[SecretString],
    request: &VerifyRequest<'_>,
) -> Result<(), VerifyError> {
    let names = if request.header(STANDARD_HEADERS.id)?.is_none()
        && request.header(SVIX_HEADERS.id)?.is_some()
    {
        &SVIX_HEADERS
    } else {
        &STANDARD_HEADERS
    };
    let id = request.required_header(names.id)?;
    let timestamp = request.required_header(names.timestamp)?;
    let value = request.required_header(names.signature)?;
    // Each entry is `version,signature`; versions other than v1 (such as the asymmetric
    // `v1a`) are skipped, not failed, so a sender can add them.
    let tags = value
        .split_whitespace()
        .filter_map(|entry| entry.strip_prefix("v1,"))
        .map(|signature| decode_base64(names.signature, signature))
        .collect::<Result<Vec<_>, _>>()?;
    if tags.is_empty() {
        return Err(VerifyError::MalformedHeader {
            header: names.signature,
            reason: "no v1 signature",
        });
    }
    request.check_timestamp(names.timestamp, timestamp)?;
    let keys: Vec<SecretSlice<u8>> = secrets
        .iter()
        .filter_map(|secret| signing_key(secret.expose_secret()))
        .collect();
    let message = [
        id.as_bytes(),
        b".",
        timestamp.as_bytes(),
        b".",
        request.body,
    ];
    check_hmac::<HmacSha256, _>(keys.iter().map(|key| key.expose_secret()), &message, &tags)
}

/// The HMAC key inside a `whsec_<base64>` secret; the prefix is optional. `None` when the
/// rest is not base64.
pub(super) fn signing_key(secret: &str) -> Option<SecretSlice<u8>> {
    let encoded = secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret);
    STANDARD.decode(encoded).ok().map(SecretSlice::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::verify::testing::{at, base64, check, headers, hmac_sha256, URL};
    use crate::domain::verify::Scheme;

    /// The vector in the Standard Webhooks libraries' tests (and Svix's).
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TS: i64 = 1_614_265_330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn signed(secret: &str, ts: i64, body: &[u8]) -> String {
        let key = signing_key(secret).unwrap();
        let message = [format!("{ID}.{ts}.").as_bytes(), body].concat();
        format!("v1,{}", base64(&hmac_sha256(key.expose_secret(), &message)))
    }

    fn verify_with(
        secrets: &[&str],
        signature: &str,
        body: &[u8],
        now: i64,
    ) -> Result<(), VerifyError> {
        let ts = TS.to_string();
        let headers = headers(&[
            ("webhook-id", ID),
            ("webhook-timestamp", &ts),
            ("webhook-signature", signature),
        ]);
        check(
            Scheme::StandardWebhooks,
            secrets,
            &headers,
            body,
            URL,
            at(now),
        )
    }

    #[test]
    fn the_specs_test_vector_verifies_with_or_without_the_prefix() {
        assert_eq!(signed(SECRET, TS, BODY), SIGNATURE);
        assert_eq!(verify_with(&[SECRET], SIGNATURE, BODY, TS), Ok(()));
        assert_eq!(verify_with(&[&SECRET[6..]], SIGNATURE, BODY, TS), Ok(()));
    }

    #[test]
    fn a_wrong_secret_or_a_tampered_body_is_a_bad_signature() {
        let other = format!("whsec_{}", base64(b"another key"));
        let bad = Err(VerifyError::BadSignature);
        assert_eq!(verify_with(&[&other], SIGNATURE, BODY, TS), bad);
        assert_eq!(
            verify_with(&[SECRET], SIGNATURE, br#"{"test": 1}"#, TS),
            bad
        );
    }

    #[test]
    fn the_second_of_two_secrets_verifies_during_a_rotation() {
        let new = format!("whsec_{}", base64(b"the new key"));
        let signature = signed(&new, TS, BODY);
        assert_eq!(verify_with(&[SECRET, &new], &signature, BODY, TS), Ok(()));
    }

    #[test]
    fn any_v1_entry_may_match_and_other_versions_are_skipped() {
        let value = format!("v1a,AAAA v1,AAAA {SIGNATURE}");
        assert_eq!(verify_with(&[SECRET], &value, BODY, TS), Ok(()));
        assert!(matches!(
            verify_with(&[SECRET], "v1a,AAAA v2,AAAA", BODY, TS),
            Err(VerifyError::MalformedHeader { .. })
        ));
    }

    #[test]
    fn stale_and_future_timestamps_are_refused_even_when_signed() {
        let stale = Err(VerifyError::StaleTimestamp {
            header: "webhook-timestamp",
            tolerance_secs: 300,
        });
        assert_eq!(verify_with(&[SECRET], SIGNATURE, BODY, TS + 301), stale);
        assert_eq!(verify_with(&[SECRET], SIGNATURE, BODY, TS - 301), stale);
    }

    #[test]
    fn each_missing_header_is_named() {
        let all = [
            ("webhook-id", ID),
            ("webhook-timestamp", "1614265330"),
            ("webhook-signature", SIGNATURE),
        ];
        for skipped in 0..all.len() {
            let pairs: Vec<_> = (0..all.len())
                .filter(|&i| i != skipped)
                .map(|i| all[i])
                .collect();
            let result = check(
                Scheme::StandardWebhooks,
                &[SECRET],
                &headers(&pairs),
                BODY,
                URL,
                at(TS),
            );
            assert_eq!(result, Err(VerifyError::MissingHeader(all[skipped].0)));
        }
    }

    #[test]
    fn svix_branded_headers_are_read_when_the_standard_ones_are_absent() {
        let headers = headers(&[
            ("svix-id", ID),
            ("svix-timestamp", "1614265330"),
            ("svix-signature", SIGNATURE),
        ]);
        let result = check(
            Scheme::StandardWebhooks,
            &[SECRET],
            &headers,
            BODY,
            URL,
            at(TS),
        );
        assert_eq!(result, Ok(()));
    }
}
