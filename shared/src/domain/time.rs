//! Timestamps as stored documents and API responses write them: RFC 3339 in UTC (`Z`), with
//! as many fractional digits as the value needs, exactly what chrono's own `Serialize`
//! writes. Made here in one piece: chrono's hands the text to the serializer a character
//! at a time, each through its string escaping, and on the delivery path that was most of
//! what serializing a delivery cost. Use with `#[serde(serialize_with = "...")]`; chrono's
//! `Deserialize` reads them back.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Serialize, Serializer};

/// Serializes a timestamp.
pub fn serialize<S: Serializer>(at: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&at.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}

/// Serializes an optional timestamp.
pub fn serialize_option<S: Serializer>(
    at: &Option<DateTime<Utc>>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    struct Timestamp<'a>(&'a DateTime<Utc>);
    impl Serialize for Timestamp<'_> {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            serialize(self.0, serializer)
        }
    }
    match at {
        Some(at) => serializer.serialize_some(&Timestamp(at)),
        None => serializer.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use serde::Serialize;

    use super::*;

    #[derive(Serialize)]
    struct Ours {
        #[serde(serialize_with = "serialize")]
        at: DateTime<Utc>,
        #[serde(serialize_with = "serialize_option")]
        maybe: Option<DateTime<Utc>>,
    }

    #[derive(Serialize)]
    struct Chronos {
        at: DateTime<Utc>,
        maybe: Option<DateTime<Utc>>,
    }

    #[test]
    fn writes_what_chrono_writes_at_every_precision() {
        for nanos in [0, 120_000_000, 123_456_000, 123_456_789, 1, 999_999_999] {
            let at = DateTime::from_timestamp(1_795_400_000, nanos).unwrap();
            for maybe in [None, Some(at)] {
                assert_eq!(
                    serde_json::to_string(&Ours { at, maybe }).unwrap(),
                    serde_json::to_string(&Chronos { at, maybe }).unwrap()
                );
            }
        }
        let at = DateTime::from_timestamp(1_795_400_000, 123_456_789).unwrap();
        let json = serde_json::to_string(&Ours { at, maybe: None }).unwrap();
        assert_eq!(
            json,
            r#"{"at":"2026-11-23T02:13:20.123456789Z","maybe":null}"#
        );
    }
}
