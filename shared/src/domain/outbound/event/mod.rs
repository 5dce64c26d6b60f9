//! Published events: the publish request ([`NewEvent`]), the stored [`Event`] and the
//! exact JSON body every subscriber receives.

mod event_type;

use std::sync::OnceLock;

use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

pub use event_type::{EventPattern, EventType, MAX_EVENT_TYPE_LEN};

use super::ids::EventId;
use crate::domain::time;

/// Longest accepted `source`.
pub const MAX_SOURCE_LEN: usize = 128;

/// One published event as stored. Serialized (for storage) in the delivered shape, with
/// `event_type` named `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub id: EventId,
    #[serde(rename = "type")]
    pub event_type: EventType,
    /// The publishing service (`orchestrator`, `jenkins`…).
    pub source: String,
    /// Event-specific data, any JSON.
    pub data: Value,
    /// Routing context: `project`, `team`, `severity`, `environment`…
    pub metadata: Map<String, Value>,
    /// When Nexus accepted the event.
    #[serde(serialize_with = "time::serialize")]
    pub timestamp: DateTime<Utc>,
    /// The delivered body, built on first use: a fan-out shares one stored event, so its
    /// deliveries (and their retries) sign and send the same bytes without re-serializing.
    /// A stored event is never changed; one changed after its body was built keeps that body.
    #[serde(skip)]
    payload: PayloadOnce,
}

impl Event {
    /// An event with its body not built yet.
    pub fn new(
        id: EventId,
        event_type: EventType,
        source: String,
        data: Value,
        metadata: Map<String, Value>,
        timestamp: DateTime<Utc>,
    ) -> Self {
        Self {
            id,
            event_type,
            source,
            data,
            metadata,
            timestamp,
            payload: PayloadOnce::default(),
        }
    }

    /// `metadata.project`, what project filters compare with.
    pub fn project(&self) -> Option<&str> {
        self.metadata.get("project").and_then(Value::as_str)
    }

    /// `metadata.team`, what team filters compare with.
    pub fn team(&self) -> Option<&str> {
        self.metadata.get("team").and_then(Value::as_str)
    }

    /// `metadata.severity`, else `data.severity`: the brief's security events carry it in
    /// their data.
    pub fn severity(&self) -> Option<&str> {
        self.metadata
            .get("severity")
            .or_else(|| self.data.get("severity"))
            .and_then(Value::as_str)
    }

    /// The body POSTed to subscribers: compact JSON with the brief's keys in its order,
    /// `{"id","type","timestamp","source","data","metadata"}`, the timestamp in RFC 3339
    /// UTC with milliseconds. Built from the event alone, so every attempt of every delivery
    /// of it signs and sends the same bytes.
    pub fn payload(&self) -> Bytes {
        self.payload.0.get_or_init(|| self.build_payload()).clone()
    }

    fn build_payload(&self) -> Bytes {
        #[derive(Serialize)]
        struct Payload<'a> {
            id: &'a EventId,
            #[serde(rename = "type")]
            event_type: &'a EventType,
            timestamp: String,
            source: &'a str,
            data: &'a Value,
            metadata: &'a Map<String, Value>,
        }
        let payload = Payload {
            id: &self.id,
            event_type: &self.event_type,
            timestamp: self.timestamp.to_rfc3339_opts(SecondsFormat::Millis, true),
            source: &self.source,
            data: &self.data,
            metadata: &self.metadata,
        };
        // Only string-keyed maps and plain values: serializing to memory cannot fail.
        Bytes::from(serde_json::to_vec(&payload).expect("an event always serializes"))
    }
}

/// An event's body once built. Not part of the event's value: a comparison looks at the
/// fields it is built from, and a clone shares what was built.
#[derive(Default, Clone)]
struct PayloadOnce(OnceLock<Bytes>);

impl PartialEq for PayloadOnce {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl std::fmt::Debug for PayloadOnce {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.get().is_some() {
            "built"
        } else {
            "not built"
        })
    }
}

/// The body of `POST /api/v1/events` (one element of the batch), checked as it is
/// deserialized: a `NewEvent` is always publishable.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewEvent {
    #[serde(rename = "type")]
    pub event_type: EventType,
    /// 1..=128 characters, not blank.
    #[serde(deserialize_with = "source")]
    pub source: String,
    /// Any JSON; absent or `null` becomes `{}` so receivers can always index into it.
    #[serde(default = "empty_object", deserialize_with = "data")]
    pub data: Value,
    /// Absent or `null` is empty.
    #[serde(default, deserialize_with = "metadata")]
    pub metadata: Map<String, Value>,
}

impl NewEvent {
    /// The event as stored, with the id and timestamp Nexus gives it.
    pub fn into_event(self, id: EventId, timestamp: DateTime<Utc>) -> Event {
        Event::new(
            id,
            self.event_type,
            self.source,
            self.data,
            self.metadata,
            timestamp,
        )
    }
}

fn empty_object() -> Value {
    Value::Object(Map::new())
}

fn source<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    let value = String::deserialize(deserializer)?;
    if value.trim().is_empty() || value.chars().count() > MAX_SOURCE_LEN {
        return Err(serde::de::Error::custom(format!(
            "source must be 1 to {MAX_SOURCE_LEN} characters and not blank"
        )));
    }
    Ok(value)
}

fn data<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Value, D::Error> {
    Ok(match Value::deserialize(deserializer)? {
        Value::Null => empty_object(),
        value => value,
    })
}

fn metadata<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Map<String, Value>, D::Error> {
    Ok(Option::<Map<String, Value>>::deserialize(deserializer)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn new_event(json: Value) -> Result<NewEvent, serde_json::Error> {
        serde_json::from_value(json)
    }

    fn at_millis(millis: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(millis).unwrap()
    }

    fn event(data: Value, metadata: Value) -> Event {
        let Value::Object(metadata) = metadata else {
            panic!("metadata must be an object")
        };
        Event::new(
            EventId::parse("evt_01arz3ndektsv4rrffq69g5fav").unwrap(),
            EventType::parse("release.completed").unwrap(),
            "orchestrator".into(),
            data,
            metadata,
            at_millis(1_795_407_423_123),
        )
    }

    #[test]
    fn the_briefs_publish_body_becomes_an_event() {
        let body = json!({
            "type": "release.completed",
            "source": "orchestrator",
            "data": {"release_id": "rel-123", "version": "2.0.0", "status": "success"},
            "metadata": {"project": "NEXUS", "team": "platform"}
        });
        let id = EventId::new();
        let event = new_event(body)
            .unwrap()
            .into_event(id.clone(), at_millis(0));
        assert_eq!(event.id, id);
        assert_eq!(event.event_type.as_str(), "release.completed");
        assert_eq!(event.data["version"], "2.0.0");
        assert_eq!(event.project(), Some("NEXUS"));
        assert_eq!(event.team(), Some("platform"));
        assert_eq!(event.severity(), None);
    }

    #[test]
    fn missing_or_null_data_and_metadata_become_empty_objects() {
        for body in [
            json!({"type": "build.started", "source": "jenkins"}),
            json!({"type": "build.started", "source": "jenkins", "data": null, "metadata": null}),
        ] {
            let parsed = new_event(body).unwrap();
            assert_eq!(parsed.data, json!({}));
            assert!(parsed.metadata.is_empty());
        }
        let scalar = new_event(json!({"type": "a.b", "source": "s", "data": [1, 2]})).unwrap();
        assert_eq!(scalar.data, json!([1, 2]));
    }

    #[test]
    fn bad_publish_bodies_are_refused() {
        for body in [
            json!({"source": "jenkins"}),
            json!({"type": "build.started"}),
            json!({"type": "Build", "source": "jenkins"}),
            json!({"type": "build.*", "source": "jenkins"}),
            json!({"type": "build.started", "source": ""}),
            json!({"type": "build.started", "source": "   "}),
            json!({"type": "build.started", "source": "s".repeat(129)}),
            json!({"type": "build.started", "source": "jenkins", "metadata": []}),
            json!({"type": "build.started", "source": "jenkins", "extra": 1}),
        ] {
            assert!(new_event(body.clone()).is_err(), "{body}");
        }
        assert!(new_event(json!({"type": "a", "source": "é".repeat(128)})).is_ok());
    }

    #[test]
    fn the_payload_has_the_briefs_keys_in_order_with_a_millisecond_timestamp() {
        let event = event(json!({"b": 1, "a": [true]}), json!({"project": "NEXUS"}));
        let payload = String::from_utf8(event.payload().to_vec()).unwrap();
        assert_eq!(
            payload,
            r#"{"id":"evt_01arz3ndektsv4rrffq69g5fav","type":"release.completed","timestamp":"2026-11-23T04:17:03.123Z","source":"orchestrator","data":{"a":[true],"b":1},"metadata":{"project":"NEXUS"}}"#
        );
    }

    #[test]
    fn every_delivery_of_an_event_sends_one_shared_body_which_a_stored_copy_rebuilds_the_same() {
        let event = event(json!({"n": 1}), json!({}));
        let first = event.payload();
        assert_eq!(
            first.as_ptr(),
            event.payload().as_ptr(),
            "built once, then shared"
        );
        assert_eq!(event.clone().payload().as_ptr(), first.as_ptr());

        let stored = serde_json::to_value(&event).unwrap();
        assert!(stored.get("payload").is_none(), "the body is not stored");
        let read_back: Event = serde_json::from_value(stored).unwrap();
        assert_eq!(read_back, event);
        assert_eq!(read_back.payload(), first);
    }

    #[test]
    fn a_whole_second_timestamp_still_shows_its_milliseconds() {
        let mut event = event(json!({}), json!({}));
        event.timestamp = at_millis(1_795_407_423_000);
        let payload: Value = serde_json::from_slice(&event.payload()).unwrap();
        assert_eq!(payload["timestamp"], "2026-11-23T04:17:03.000Z");
    }

    #[test]
    fn severity_comes_from_metadata_before_data() {
        let from_data = event(json!({"severity": "critical"}), json!({}));
        assert_eq!(from_data.severity(), Some("critical"));
        let both = event(json!({"severity": "critical"}), json!({"severity": "low"}));
        assert_eq!(both.severity(), Some("low"));
        let not_text = event(json!({"severity": 3}), json!({"project": 7}));
        assert_eq!(not_text.severity(), None);
        assert_eq!(not_text.project(), None);
    }

    #[test]
    fn a_stored_event_round_trips_through_its_serde_form() {
        let event = event(json!({"x": 1}), json!({"team": "platform"}));
        let stored = serde_json::to_string(&event).unwrap();
        assert!(stored.contains(r#""type":"release.completed""#));
        assert_eq!(serde_json::from_str::<Event>(&stored).unwrap(), event);
    }
}
