//! What a provider signs, as it arrived, and strict readers for its headers and timestamps.

use chrono::{DateTime, Utc};
use http::HeaderMap;

use super::VerifyError;

/// How far a signed timestamp may be from now, either way: the five minutes Stripe, Slack
/// and Standard Webhooks recommend against replays.
pub const TIMESTAMP_TOLERANCE_SECS: u64 = 300;

/// The raw request, before anything is parsed: signatures cover bytes, not values.
///
/// Not `Debug`: the headers may hold credentials.
#[derive(Clone, Copy)]
pub struct VerifyRequest<'a> {
    /// The headers as received.
    pub headers: &'a HeaderMap,
    /// The body byte for byte as received.
    pub body: &'a [u8],
    /// The full public URL as the provider called it, `scheme://host/path?query`. Twilio
    /// signs it; the token scheme reads its `token` query parameter.
    pub url: &'a str,
    /// When the request arrived, to check signed timestamps against.
    pub now: DateTime<Utc>,
}

impl<'a> VerifyRequest<'a> {
    /// The value of header `name` (spelled as the provider documents it; lookup ignores
    /// case), if present.
    pub(super) fn header(&self, name: &'static str) -> Result<Option<&'a str>, VerifyError> {
        let Some(value) = self.headers.get(name) else {
            return Ok(None);
        };
        value
            .to_str()
            .map(Some)
            .map_err(|_| VerifyError::MalformedHeader {
                header: name,
                reason: "not visible ASCII",
            })
    }

    /// The value of header `name`, which the scheme cannot do without.
    pub(super) fn required_header(&self, name: &'static str) -> Result<&'a str, VerifyError> {
        self.header(name)?.ok_or(VerifyError::MissingHeader(name))
    }

    /// Checks a unix-seconds `timestamp` read from `header` is within tolerance of now, in
    /// either direction: a timestamp far in the future is as suspect as an old one.
    pub(super) fn check_timestamp(
        &self,
        header: &'static str,
        timestamp: &str,
    ) -> Result<(), VerifyError> {
        let seconds: i64 = timestamp
            .parse()
            .map_err(|_| VerifyError::MalformedHeader {
                header,
                reason: "timestamp is not unix seconds",
            })?;
        if self.now.timestamp().abs_diff(seconds) > TIMESTAMP_TOLERANCE_SECS {
            return Err(VerifyError::StaleTimestamp {
                header,
                tolerance_secs: TIMESTAMP_TOLERANCE_SECS,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{at, headers, URL};
    use super::*;

    const NOW: i64 = 1_700_000_000;

    fn timestamp_check(timestamp: &str) -> Result<(), VerifyError> {
        let headers = HeaderMap::new();
        let request = VerifyRequest {
            headers: &headers,
            body: b"",
            url: URL,
            now: at(NOW),
        };
        request.check_timestamp("X-Test", timestamp)
    }

    #[test]
    fn timestamps_within_five_minutes_either_way_pass() {
        for offset in [-300, -1, 0, 1, 300] {
            assert_eq!(
                timestamp_check(&(NOW + offset).to_string()),
                Ok(()),
                "{offset}"
            );
        }
    }

    #[test]
    fn old_and_future_timestamps_are_stale() {
        for offset in [-301, 301, -NOW, i64::MAX - NOW] {
            assert!(
                matches!(
                    timestamp_check(&(NOW + offset).to_string()),
                    Err(VerifyError::StaleTimestamp { .. })
                ),
                "{offset}"
            );
        }
        assert!(timestamp_check(&i64::MIN.to_string()).is_err());
    }

    #[test]
    fn timestamps_that_are_not_unix_seconds_are_malformed() {
        for value in ["", "1.5", "2023-11-14T22:13:20Z", "99999999999999999999"] {
            assert!(
                matches!(
                    timestamp_check(value),
                    Err(VerifyError::MalformedHeader { .. })
                ),
                "{value}"
            );
        }
    }

    #[test]
    fn headers_are_found_whatever_their_case() {
        let headers = headers(&[("x-slack-signature", "v0=1")]);
        let request = VerifyRequest {
            headers: &headers,
            body: b"",
            url: URL,
            now: at(NOW),
        };
        assert_eq!(request.header("X-Slack-Signature"), Ok(Some("v0=1")));
        assert_eq!(
            request.required_header("X-Slack-Request-Timestamp"),
            Err(VerifyError::MissingHeader("X-Slack-Request-Timestamp"))
        );
    }
}
