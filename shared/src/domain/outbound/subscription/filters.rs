//! The project, team and severity filters a subscription narrows its events with.

use serde::{Deserialize, Serialize};

use crate::domain::outbound::event::Event;

/// Extra conditions on an event's metadata. An unset filter lets everything through; a
/// set one lets through only events carrying a matching value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Filters {
    /// The event's `metadata.project` must equal this.
    pub project: Option<String>,
    /// The event's `metadata.team` must equal this.
    pub team: Option<String>,
    /// The event's severity must be one of these; empty means any severity, or none.
    pub severities: Vec<String>,
}

impl Filters {
    /// Whether `event` passes every set filter. Comparisons are exact: the values are
    /// keys (`NEXUS`, `platform`, `critical`), not prose.
    pub fn matches(&self, event: &Event) -> bool {
        let equals = |filter: &Option<String>, value: Option<&str>| {
            filter.as_deref().is_none_or(|wanted| value == Some(wanted))
        };
        equals(&self.project, event.project())
            && equals(&self.team, event.team())
            && (self.severities.is_empty()
                || event
                    .severity()
                    .is_some_and(|severity| self.severities.iter().any(|s| s == severity)))
    }

    /// Whether no filter is set.
    pub fn is_empty(&self) -> bool {
        self.project.is_none() && self.team.is_none() && self.severities.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use chrono::DateTime;
    use serde_json::{json, Value};

    use super::*;
    use crate::domain::outbound::event::EventType;
    use crate::domain::outbound::ids::EventId;

    fn event(metadata: Value, data: Value) -> Event {
        Event::new(
            EventId::new(),
            EventType::parse("security.vulnerability_detected").unwrap(),
            "scanner".into(),
            data,
            metadata.as_object().unwrap().clone(),
            DateTime::UNIX_EPOCH,
        )
    }

    fn filters(project: Option<&str>, team: Option<&str>, severities: &[&str]) -> Filters {
        Filters {
            project: project.map(Into::into),
            team: team.map(Into::into),
            severities: severities.iter().map(|s| (*s).into()).collect(),
        }
    }

    #[test]
    fn no_filters_let_every_event_through() {
        assert!(Filters::default().is_empty());
        assert!(Filters::default().matches(&event(json!({}), json!({}))));
    }

    #[test]
    fn a_project_or_team_filter_needs_the_same_value_on_the_event() {
        let nexus = filters(Some("NEXUS"), None, &[]);
        assert!(!nexus.is_empty());
        assert!(nexus.matches(&event(json!({"project": "NEXUS"}), json!({}))));
        assert!(!nexus.matches(&event(json!({"project": "OTHER"}), json!({}))));
        assert!(!nexus.matches(&event(json!({"project": "nexus"}), json!({}))));
        assert!(!nexus.matches(&event(json!({}), json!({}))));
        let platform = filters(None, Some("platform"), &[]);
        assert!(platform.matches(&event(json!({"team": "platform"}), json!({}))));
        assert!(!platform.matches(&event(json!({"team": "infra"}), json!({}))));
    }

    #[test]
    fn a_severity_filter_needs_one_of_its_severities_from_metadata_or_data() {
        let urgent = filters(None, None, &["critical", "high"]);
        assert!(urgent.matches(&event(json!({"severity": "high"}), json!({}))));
        assert!(urgent.matches(&event(json!({}), json!({"severity": "critical"}))));
        assert!(!urgent.matches(&event(json!({}), json!({"severity": "low"}))));
        assert!(!urgent.matches(&event(json!({}), json!({}))));
    }

    #[test]
    fn every_set_filter_must_pass() {
        let all = filters(Some("NEXUS"), Some("platform"), &["critical"]);
        let metadata = json!({"project": "NEXUS", "team": "platform", "severity": "critical"});
        assert!(all.matches(&event(metadata, json!({}))));
        let wrong_team = json!({"project": "NEXUS", "team": "infra", "severity": "critical"});
        assert!(!all.matches(&event(wrong_team, json!({}))));
    }

    #[test]
    fn missing_fields_deserialize_as_no_filter() {
        let parsed: Filters = serde_json::from_str(r#"{"team": "platform"}"#).unwrap();
        assert_eq!(parsed, filters(None, Some("platform"), &[]));
        let round = serde_json::to_value(&parsed).unwrap();
        assert_eq!(serde_json::from_value::<Filters>(round).unwrap(), parsed);
    }
}
