//! Slack: `X-Slack-Signature: v0=<hex>`, HMAC-SHA256 over `v0:{timestamp}:{body}` with the
//! timestamp from `X-Slack-Request-Timestamp`.

use secrecy::SecretString;

use super::mac::{check_hmac, decode_hex, raw_keys, HmacSha256};
use super::{VerifyError, VerifyRequest};

const HEADER: &str = "X-Slack-Signature";
const TIMESTAMP_HEADER: &str = "X-Slack-Request-Timestamp";
const VERSION: &str = "v0";

pub(super) fn verify(
    secrets: &[SecretString],
    request: &VerifyRequest<'_>,
) -> Result<(), VerifyError> {
    let value = request.required_header(HEADER)?;
    let timestamp = request.required_header(TIMESTAMP_HEADER)?;
    let signature = value
        .strip_prefix("v0=")
        .ok_or(VerifyError::MalformedHeader {
            header: HEADER,
            reason: "expected v0=<hex>",
        })?;
    let tag = decode_hex(HEADER, signature)?;
    request.check_timestamp(TIMESTAMP_HEADER, timestamp)?;
    let message = [
        VERSION.as_bytes(),
        b":",
        timestamp.as_bytes(),
        b":",
        request.body,
    ];
    check_hmac::<HmacSha256, _>(raw_keys(secrets), &message, &[tag])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::verify::testing::{at, check, headers, hmac_sha256, URL};
    use crate::domain::verify::Scheme;

    /// Slack's "Verifying requests from Slack" walkthrough.
    const DOCUMENTED_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
    const DOCUMENTED_TS: i64 = 1_531_420_618;
    const DOCUMENTED_BODY: &[u8] = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    const DOCUMENTED_SIGNATURE: &str =
        "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";

    fn signed(secret: &str, ts: i64, body: &[u8]) -> String {
        let message = [format!("v0:{ts}:").as_bytes(), body].concat();
        format!(
            "v0={}",
            hex::encode(hmac_sha256(secret.as_bytes(), &message))
        )
    }

    fn verify_with(
        secrets: &[&str],
        signature: &str,
        ts: i64,
        body: &[u8],
        now: i64,
    ) -> Result<(), VerifyError> {
        let headers = headers(&[(HEADER, signature), (TIMESTAMP_HEADER, &ts.to_string())]);
        check(Scheme::Slack, secrets, &headers, body, URL, at(now))
    }

    #[test]
    fn slacks_documented_example_verifies() {
        assert_eq!(
            signed(DOCUMENTED_SECRET, DOCUMENTED_TS, DOCUMENTED_BODY),
            DOCUMENTED_SIGNATURE
        );
        let now = DOCUMENTED_TS + 60;
        let result = verify_with(
            &[DOCUMENTED_SECRET],
            DOCUMENTED_SIGNATURE,
            DOCUMENTED_TS,
            DOCUMENTED_BODY,
            now,
        );
        assert_eq!(result, Ok(()));
    }

    #[test]
    fn a_wrong_secret_or_a_tampered_body_or_timestamp_is_a_bad_signature() {
        let ts = DOCUMENTED_TS;
        let signature = signed("secret", ts, b"a=1");
        let bad = Err(VerifyError::BadSignature);
        assert_eq!(verify_with(&["other"], &signature, ts, b"a=1", ts), bad);
        assert_eq!(verify_with(&["secret"], &signature, ts, b"a=2", ts), bad);
        assert_eq!(
            verify_with(&["secret"], &signature, ts + 1, b"a=1", ts),
            bad
        );
    }

    #[test]
    fn the_second_of_two_secrets_verifies_during_a_rotation() {
        let signature = signed("new", DOCUMENTED_TS, b"a=1");
        let result = verify_with(
            &["old", "new"],
            &signature,
            DOCUMENTED_TS,
            b"a=1",
            DOCUMENTED_TS,
        );
        assert_eq!(result, Ok(()));
    }

    #[test]
    fn stale_and_future_timestamps_are_refused_even_when_signed() {
        let ts = DOCUMENTED_TS;
        let signature = signed("secret", ts, b"a=1");
        let stale = Err(VerifyError::StaleTimestamp {
            header: TIMESTAMP_HEADER,
            tolerance_secs: 300,
        });
        assert_eq!(
            verify_with(&["secret"], &signature, ts, b"a=1", ts + 301),
            stale
        );
        assert_eq!(
            verify_with(&["secret"], &signature, ts, b"a=1", ts - 301),
            stale
        );
    }

    #[test]
    fn missing_headers_and_other_versions_are_reported_as_such() {
        let only_signature = headers(&[(HEADER, DOCUMENTED_SIGNATURE)]);
        let result = check(Scheme::Slack, &["s"], &only_signature, b"", URL, at(0));
        assert_eq!(result, Err(VerifyError::MissingHeader(TIMESTAMP_HEADER)));
        let only_timestamp = headers(&[(TIMESTAMP_HEADER, "1531420618")]);
        let result = check(Scheme::Slack, &["s"], &only_timestamp, b"", URL, at(0));
        assert_eq!(result, Err(VerifyError::MissingHeader(HEADER)));
        let v1 = DOCUMENTED_SIGNATURE.replace("v0=", "v1=");
        assert!(matches!(
            verify_with(&["s"], &v1, DOCUMENTED_TS, b"", DOCUMENTED_TS),
            Err(VerifyError::MalformedHeader { .. })
        ));
    }
}
