//! Event type names (`build.completed`) and the patterns subscriptions select them with
//! (`build.completed`, `build.*`, `*`).

use serde::Deserialize;

use crate::domain::DomainError;

/// Longest accepted event type or pattern.
pub const MAX_EVENT_TYPE_LEN: usize = 128;

/// Checks the event type rules, for `field`: 1..=128 chars of dot-separated, non-empty
/// segments of `a-z`, `0-9` and `_`.
fn check_event_type(field: &'static str, value: &str) -> Result<(), DomainError> {
    if value.is_empty() || value.len() > MAX_EVENT_TYPE_LEN {
        return Err(DomainError::new(
            field,
            format!("must be 1 to {MAX_EVENT_TYPE_LEN} characters"),
        ));
    }
    let segment_ok = |segment: &str| {
        !segment.is_empty()
            && segment
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    };
    if !value.split('.').all(segment_ok) {
        return Err(DomainError::new(
            field,
            "must be dot-separated words of lowercase letters, digits and '_'",
        ));
    }
    Ok(())
}

/// What happened, as a dotted name: `release.rolled_back`, `build.completed`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "String")]
pub struct EventType(String);

impl EventType {
    pub fn parse(value: &str) -> Result<Self, DomainError> {
        check_event_type("event_type", value)?;
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Which event types a subscription wants: one exact type, every type under a prefix
/// (`build.*` matches `build.completed` and `build.x.y`, not `build` itself), or `*`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "String")]
pub struct EventPattern(String);

impl EventPattern {
    /// The pattern that matches every event type.
    pub const ALL: &'static str = "*";

    pub fn parse(value: &str) -> Result<Self, DomainError> {
        let exact = value.strip_suffix(".*").unwrap_or(value);
        if value != Self::ALL {
            check_event_type("events", exact)?;
            if value.len() > MAX_EVENT_TYPE_LEN {
                return Err(DomainError::new(
                    "events",
                    format!("must be 1 to {MAX_EVENT_TYPE_LEN} characters"),
                ));
            }
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `event_type` is one this pattern selects.
    pub fn matches(&self, event_type: &EventType) -> bool {
        if self.0 == Self::ALL {
            return true;
        }
        match self.0.strip_suffix('*') {
            // The prefix keeps its dot, so `build.*` cannot match `buildx.done` or `build`.
            Some(prefix) => event_type.as_str().starts_with(prefix),
            None => self.0 == event_type.as_str(),
        }
    }

    /// Whether this pattern selects more than one exact type.
    pub fn is_wildcard(&self) -> bool {
        self.0.ends_with('*')
    }
}

impl From<EventType> for EventPattern {
    fn from(event_type: EventType) -> Self {
        Self(event_type.0)
    }
}

string_newtype_impls!(EventType);
string_newtype_impls!(EventPattern);

#[cfg(test)]
mod tests {
    use super::*;

    fn event_type(value: &str) -> EventType {
        EventType::parse(value).unwrap()
    }

    fn pattern(value: &str) -> EventPattern {
        EventPattern::parse(value).unwrap()
    }

    #[test]
    fn the_briefs_event_types_parse() {
        for ok in [
            "release.rolled_back",
            "build.completed",
            "hygiene.check_completed",
            "security.vulnerability_detected",
            "system.agent_status_changed",
            "ping",
            "a.b.c.d",
            "v2.build_42.done",
        ] {
            assert_eq!(event_type(ok).as_str(), ok);
        }
        assert!(EventType::parse(&"a".repeat(128)).is_ok());
    }

    #[test]
    fn malformed_event_types_are_refused() {
        for bad in [
            "",
            ".",
            "build.",
            ".build",
            "build..completed",
            "Build.completed",
            "build-completed",
            "build completed",
            "build.*",
            "*",
            "büild.done",
            &"a".repeat(129),
        ] {
            let error = EventType::parse(bad).unwrap_err();
            assert_eq!(error.field, "event_type", "{bad:?}");
        }
    }

    #[test]
    fn an_exact_pattern_matches_only_its_own_type() {
        let p = pattern("build.completed");
        assert!(p.matches(&event_type("build.completed")));
        assert!(!p.matches(&event_type("build.completed.late")));
        assert!(!p.matches(&event_type("build.failed")));
        assert!(!p.is_wildcard());
    }

    #[test]
    fn a_trailing_wildcard_matches_everything_below_its_prefix_but_not_the_prefix() {
        let p = pattern("build.*");
        assert!(p.is_wildcard());
        assert!(p.matches(&event_type("build.completed")));
        assert!(p.matches(&event_type("build.x.y")));
        assert!(!p.matches(&event_type("build")));
        assert!(!p.matches(&event_type("buildx.completed")));
        assert!(!p.matches(&event_type("release.completed")));
        assert!(pattern("release.rolled.*").matches(&event_type("release.rolled.back")));
    }

    #[test]
    fn a_lone_star_matches_every_type() {
        for t in ["ping", "build.completed", "a.b.c"] {
            assert!(pattern("*").matches(&event_type(t)));
        }
    }

    #[test]
    fn wildcards_elsewhere_than_the_end_are_refused() {
        for bad in [
            "",
            "build*",
            "*.completed",
            "build.*.x",
            "build.**",
            "**",
            ".*",
            "a.*b",
        ] {
            let error = EventPattern::parse(bad).unwrap_err();
            assert_eq!(error.field, "events", "{bad:?}");
        }
        assert!(EventPattern::parse(&format!("{}.*", "a".repeat(126))).is_ok());
        assert!(EventPattern::parse(&format!("{}.*", "a".repeat(127))).is_err());
    }

    #[test]
    fn types_and_patterns_travel_as_validated_strings() {
        let t: EventType = serde_json::from_str("\"build.failed\"").unwrap();
        assert_eq!(serde_json::to_string(&t).unwrap(), "\"build.failed\"");
        assert!(serde_json::from_str::<EventType>("\"Build\"").is_err());
        let p: EventPattern = serde_json::from_str("\"build.*\"").unwrap();
        assert_eq!(serde_json::to_string(&p).unwrap(), "\"build.*\"");
        assert!(serde_json::from_str::<EventPattern>("\"*.x\"").is_err());
        assert_eq!(EventPattern::from(t).as_str(), "build.failed");
    }
}
