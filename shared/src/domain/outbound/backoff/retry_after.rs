//! Reading a subscriber's `Retry-After` header.

use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};

/// How long a `Retry-After` value asks us to wait from `now`: delta-seconds (`120`) or an
/// HTTP-date in any of the three forms HTTP allows. A date in the past means no wait;
/// anything else unreadable is `None`, as if the header were absent.
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Too many digits to count is still "a very long time"; the policy caps it.
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let date = http_date(value)?;
    Some((date - now).to_std().unwrap_or(Duration::ZERO))
}

/// An HTTP-date: IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), or the obsolete RFC 850
/// (`Sunday, 06-Nov-94 08:49:37 GMT`) and asctime (`Sun Nov  6 08:49:37 1994`) forms
/// that recipients must still accept.
fn http_date(value: &str) -> Option<DateTime<Utc>> {
    if let Ok(date) = DateTime::parse_from_rfc2822(value) {
        return Some(date.with_timezone(&Utc));
    }
    ["%A, %d-%b-%y %H:%M:%S GMT", "%a %b %e %H:%M:%S %Y"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(value, format).ok())
        .map(|naive| naive.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 1994-11-06T08:49:00Z, 37 seconds before the RFC's example date.
    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("1994-11-06T08:49:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn delta_seconds_are_read_as_a_wait() {
        assert_eq!(
            parse_retry_after("120", now()),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after(" 0 ", now()), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("99999999999999999999999", now()),
            Some(Duration::from_secs(u64::MAX))
        );
    }

    #[test]
    fn all_three_http_date_forms_are_read_relative_to_now() {
        for value in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
        ] {
            assert_eq!(
                parse_retry_after(value, now()),
                Some(Duration::from_secs(37)),
                "{value}"
            );
        }
    }

    #[test]
    fn a_date_in_the_past_means_retry_now() {
        let later = now() + chrono::TimeDelta::hours(1);
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", later),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn unreadable_values_are_ignored() {
        for value in [
            "",
            "soon",
            "-5",
            "1.5",
            "+3",
            "Sun, 32 Nov 1994 08:49:37 GMT",
        ] {
            assert_eq!(parse_retry_after(value, now()), None, "{value:?}");
        }
    }
}
