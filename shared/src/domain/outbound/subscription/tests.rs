use chrono::TimeDelta;
use secrecy::ExposeSecret;
use serde_json::json;

use super::*;
use crate::domain::outbound::ids::EventId;

fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 0).unwrap()
}

fn secret(n: u8) -> SecretString {
    generate_secret(&[n; SECRET_RANDOM_BYTES])
}

fn subscription(events: &[&str]) -> Subscription {
    Subscription {
        id: SubscriptionId::new(),
        name: "CI/CD Notifier".into(),
        url: TargetUrl::parse("https://your-app.com/webhooks/nexus", false).unwrap(),
        events: events
            .iter()
            .map(|e| EventPattern::parse(e).unwrap())
            .collect(),
        filters: Filters::default(),
        description: None,
        rate_limit: None,
        active: true,
        secrets: vec![SigningSecret::current(secret(1))],
        created_at: at(0),
        updated_at: at(0),
    }
}

fn event(event_type: &str) -> Event {
    Event::new(
        EventId::new(),
        EventType::parse(event_type).unwrap(),
        "jenkins".into(),
        json!({}),
        json!({"project": "NEXUS"}).as_object().unwrap().clone(),
        at(0),
    )
}

fn exposed(secrets: Vec<&SecretString>) -> Vec<&str> {
    secrets.into_iter().map(|s| s.expose_secret()).collect()
}

#[test]
fn an_active_subscription_gets_events_its_patterns_select() {
    let sub = subscription(&["build.completed", "deployment.*"]);
    assert!(sub.matches(&event("build.completed")));
    assert!(sub.matches(&event("deployment.failed")));
    assert!(!sub.matches(&event("build.failed")));
    assert!(!subscription(&[]).matches(&event("build.completed")));
    assert!(subscription(&["*"]).matches(&event("anything.at_all")));
}

#[test]
fn an_inactive_subscription_gets_nothing_but_still_lists_its_types() {
    let mut sub = subscription(&["build.*"]);
    sub.active = false;
    assert!(!sub.matches(&event("build.completed")));
    assert!(sub.has_event_type_matching(&EventType::parse("build.completed").unwrap()));
    assert!(!sub.has_event_type_matching(&EventType::parse("release.created").unwrap()));
}

#[test]
fn filters_narrow_what_a_matching_pattern_lets_through() {
    let mut sub = subscription(&["build.*"]);
    sub.filters.project = Some("OTHER".into());
    assert!(!sub.matches(&event("build.completed")));
    sub.filters.project = Some("NEXUS".into());
    assert!(sub.matches(&event("build.completed")));
}

#[test]
fn a_rotation_signs_with_both_secrets_until_the_grace_period_ends() {
    let mut sub = subscription(&["*"]);
    sub.rotate(secret(2), at(100), DEFAULT_ROTATION_GRACE);
    assert_eq!(sub.updated_at, at(100));
    let day = DEFAULT_ROTATION_GRACE.as_secs() as i64;
    let both = exposed(sub.signing_secrets(at(100 + day - 1)));
    assert_eq!(both, [secret(2).expose_secret(), secret(1).expose_secret()]);
    let new_only = exposed(sub.signing_secrets(at(100 + day)));
    assert_eq!(new_only, [secret(2).expose_secret()]);
}

#[test]
fn repeated_rotations_keep_unexpired_secrets_newest_first_and_drop_expired_ones() {
    let mut sub = subscription(&["*"]);
    let grace = Duration::from_secs(60);
    sub.rotate(secret(2), at(0), grace);
    sub.rotate(secret(3), at(30), grace);
    let order = exposed(sub.signing_secrets(at(31)));
    let expected = [secret(3), secret(2), secret(1)];
    let expected: Vec<&str> = expected.iter().map(|s| s.expose_secret()).collect();
    assert_eq!(order, expected);
    // Secret 1 expired at 60 and is dropped by the next rotation; secret 2 stays.
    sub.rotate(secret(4), at(61), grace);
    assert_eq!(sub.secrets.len(), 3);
    assert_eq!(sub.secrets[0].expires_at, None);
    assert_eq!(sub.secrets[1].expires_at, Some(at(121)));
    assert_eq!(sub.secrets[2].expires_at, Some(at(90)));
}

#[test]
fn a_rotation_without_grace_replaces_the_secret_at_once() {
    let mut sub = subscription(&["*"]);
    sub.rotate(secret(2), at(5), Duration::ZERO);
    assert_eq!(sub.secrets.len(), 1);
    assert_eq!(
        exposed(sub.signing_secrets(at(5))),
        [secret(2).expose_secret()]
    );
}

#[test]
fn an_enormous_grace_does_not_overflow() {
    let mut sub = subscription(&["*"]);
    sub.rotate(secret(2), at(0), Duration::MAX);
    assert_eq!(
        sub.signing_secrets(at(0) + TimeDelta::days(36_500)).len(),
        2
    );
}

#[test]
fn names_are_trimmed_and_bounded() {
    assert_eq!(
        validate_name("  CI/CD Notifier ").unwrap(),
        "CI/CD Notifier"
    );
    assert!(validate_name(&"é".repeat(MAX_NAME_CHARS)).is_ok());
    for bad in ["", "   ", "a\nb", &"x".repeat(MAX_NAME_CHARS + 1)] {
        assert_eq!(validate_name(bad).unwrap_err().field, "name", "{bad:?}");
    }
}

#[test]
fn descriptions_are_trimmed_bounded_and_blank_means_none() {
    assert_eq!(
        validate_description(" notes ").unwrap().as_deref(),
        Some("notes")
    );
    assert_eq!(validate_description("  ").unwrap(), None);
    let long = "x".repeat(MAX_DESCRIPTION_CHARS + 1);
    assert_eq!(
        validate_description(&long).unwrap_err().field,
        "description"
    );
}

#[test]
fn rate_limits_run_from_one_to_a_hundred_thousand_per_minute() {
    for ok in [1, 60, 100_000] {
        assert_eq!(validate_rate_limit(ok), Ok(ok));
    }
    for bad in [0, 100_001, u32::MAX] {
        assert_eq!(validate_rate_limit(bad).unwrap_err().field, "rate_limit");
    }
}
