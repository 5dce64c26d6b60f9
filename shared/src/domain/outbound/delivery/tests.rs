use std::time::Duration;

use chrono::TimeDelta;
use serde_json::json;

use super::*;

fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 0).unwrap()
}

fn delivery() -> Delivery {
    let event = Event::new(
        EventId::new(),
        EventType::parse("build.failed").unwrap(),
        "jenkins".into(),
        json!({}),
        Default::default(),
        at(0),
    );
    Delivery::new(&event, SubscriptionId::new(), at(0))
}

fn attempt(number: u32, status_code: Option<u16>) -> Attempt {
    Attempt {
        number,
        at: at(i64::from(number)),
        status_code,
        latency_ms: 12,
        response_body: None,
        response_truncated: false,
        error: status_code.is_none().then(|| "connection refused".into()),
    }
}

#[test]
fn a_new_delivery_is_pending_and_due_at_once() {
    let d = delivery();
    assert_eq!(d.status, DeliveryStatus::Pending);
    assert_eq!(d.next_attempt_at, Some(at(0)));
    assert_eq!(d.next_attempt_number(), 1);
    assert!(!d.manual);
    assert!(d.id.as_str().starts_with("dlv_"));
}

#[test]
fn a_failure_then_a_success_is_logged_and_ends_successful() {
    let mut d = delivery();
    d.record(
        attempt(1, Some(500)),
        &Decision::RetryIn(Duration::from_secs(5)),
        at(1),
    );
    assert_eq!(d.status, DeliveryStatus::Retrying);
    assert_eq!(d.next_attempt_at, Some(at(6)));
    assert_eq!(d.next_attempt_number(), 2);
    d.record(attempt(2, Some(200)), &Decision::Delivered, at(7));
    assert_eq!(d.status, DeliveryStatus::Success);
    assert_eq!(d.next_attempt_at, None);
    assert_eq!(d.updated_at, at(7));
    assert_eq!(
        d.attempts.iter().map(|a| a.number).collect::<Vec<_>>(),
        [1, 2]
    );
}

#[test]
fn a_delivery_held_for_a_rate_slot_is_due_then_and_spends_the_slot_on_its_attempt() {
    let mut d = delivery();
    d.hold_for_rate_slot(Duration::from_secs(29), at(1));
    assert_eq!(d.next_attempt_at, Some(at(30)));
    assert_eq!(d.status, DeliveryStatus::Pending);
    assert_eq!(d.rate_slot_due_by(at(29)), None);
    assert_eq!(d.rate_slot_due_by(at(30)), Some(at(30)));
    assert_eq!(
        d.rate_slot_due_by(at(95)),
        Some(at(30)),
        "a late receive still owns its slot"
    );
    d.record(
        attempt(1, Some(500)),
        &Decision::RetryIn(Duration::from_secs(5)),
        at(30),
    );
    assert!(!d.holds_rate_slot);
    assert_eq!(d.rate_slot_due_by(at(40)), None);
}

const SWEEP_AFTER: Duration = Duration::from_secs(900);

#[test]
fn a_never_tried_delivery_is_stranded_only_once_overdue_by_more_than_the_threshold() {
    let d = delivery();
    assert!(!d.is_stranded(at(0), SWEEP_AFTER));
    assert!(
        !d.is_stranded(at(900), SWEEP_AFTER),
        "exactly the threshold"
    );
    assert!(d.is_stranded(at(901), SWEEP_AFTER));
}

#[test]
fn a_delivery_held_for_a_rate_slot_is_not_stranded_until_the_slot_is_overdue() {
    let mut d = delivery();
    d.hold_for_rate_slot(Duration::from_secs(3600), at(1));
    assert!(
        !d.is_stranded(at(2000), SWEEP_AFTER),
        "its message sleeps until the slot, an hour after it was taken"
    );
    assert!(!d.is_stranded(at(3601 + 900), SWEEP_AFTER));
    assert!(d.is_stranded(at(3602 + 900), SWEEP_AFTER));
}

#[test]
fn a_manual_retry_is_due_at_once_and_gives_up_a_held_rate_slot() {
    let mut d = delivery();
    d.hold_for_rate_slot(Duration::from_secs(600), at(1));
    d.retry_manually(at(5));
    assert_eq!(d.status, DeliveryStatus::Pending);
    assert!(d.manual);
    assert_eq!(d.next_attempt_at, Some(at(5)));
    assert_eq!(d.rate_slot_due_by(at(10_000)), None);
}

#[test]
fn a_manual_retry_whose_message_never_came_is_stranded_once_overdue() {
    // `POST /deliveries/{id}/retry` stores the delivery pending and manual, then enqueues
    // it; if the enqueue failed, only the sweep brings it back (the endpoint refuses a
    // delivery that is already pending).
    let mut d = delivery();
    d.record(attempt(1, Some(500)), &Decision::GiveUp, at(1));
    d.retry_manually(at(50));
    assert!(!d.is_stranded(at(50 + 900), SWEEP_AFTER));
    assert!(d.is_stranded(at(51 + 900), SWEEP_AFTER));
}

#[test]
fn retrying_and_settled_deliveries_are_never_stranded() {
    let late = at(100_000);
    let mut retrying = delivery();
    retrying.record(
        attempt(1, Some(500)),
        &Decision::RetryIn(Duration::from_secs(5)),
        at(1),
    );
    let mut settled = delivery();
    settled.record(attempt(1, Some(200)), &Decision::Delivered, at(1));
    let mut failed_manual = delivery();
    failed_manual.manual = true;
    failed_manual.record(attempt(1, Some(500)), &Decision::GiveUp, at(1));
    for (case, d) in [
        ("retrying", retrying),
        ("settled", settled),
        ("a failed manual retry", failed_manual),
    ] {
        assert!(!d.is_stranded(late, SWEEP_AFTER), "{case}");
    }
    let mut tried = delivery();
    tried.attempts.push(attempt(1, Some(500)));
    assert_eq!(tried.status, DeliveryStatus::Pending);
    assert!(
        !tried.is_stranded(late, SWEEP_AFTER),
        "a pending delivery with an attempt came through the queue"
    );
}

#[test]
fn giving_up_or_a_gone_endpoint_fails_the_delivery() {
    for decision in [Decision::GiveUp, Decision::Disable] {
        let mut d = delivery();
        d.record(attempt(1, Some(410)), &decision, at(1));
        assert_eq!(d.status, DeliveryStatus::Failed, "{decision:?}");
        assert_eq!(d.next_attempt_at, None);
        assert!(d.status.is_final());
    }
}

#[test]
fn a_failed_manual_retry_does_not_reschedule_itself() {
    let mut d = delivery();
    d.manual = true;
    d.record(
        attempt(1, None),
        &Decision::RetryIn(Duration::from_secs(5)),
        at(1),
    );
    assert_eq!(d.status, DeliveryStatus::Failed);
    assert_eq!(d.next_attempt_at, None);
    let mut ok = delivery();
    ok.manual = true;
    ok.record(attempt(1, Some(204)), &Decision::Delivered, at(1));
    assert_eq!(ok.status, DeliveryStatus::Success);
}

#[test]
fn statuses_travel_in_lowercase() {
    for status in DeliveryStatus::ALL {
        let json = serde_json::to_string(&status).unwrap();
        assert_eq!(json, format!("\"{}\"", status.as_str()));
        assert_eq!(
            serde_json::from_str::<DeliveryStatus>(&json).unwrap(),
            status
        );
        assert_eq!(status.as_str().parse::<DeliveryStatus>(), Ok(status));
        assert_eq!(status.to_string(), status.as_str());
    }
    assert_eq!(
        "Failed".parse::<DeliveryStatus>().unwrap_err().field,
        "status"
    );
    assert!(!DeliveryStatus::Retrying.is_final());
}

#[test]
fn a_delivery_round_trips_through_its_serde_form() {
    let mut d = delivery();
    d.record(
        attempt(1, None),
        &Decision::RetryIn(Duration::from_millis(1500)),
        at(1),
    );
    assert_eq!(
        d.next_attempt_at,
        Some(at(1) + TimeDelta::milliseconds(1500))
    );
    let json = serde_json::to_value(&d).unwrap();
    assert_eq!(json["status"], "retrying");
    assert_eq!(json["attempts"][0]["error"], "connection refused");
    assert_eq!(serde_json::from_value::<Delivery>(json).unwrap(), d);
}

#[test]
fn short_bodies_are_kept_whole() {
    assert_eq!(truncate_body(b"", 10), (String::new(), false));
    assert_eq!(truncate_body(b"ok", 10), ("ok".into(), false));
    assert!(!truncate_body(&[b'a'; 1024], MAX_RESPONSE_BODY_BYTES).1);
}

#[test]
fn long_bodies_are_cut_to_the_limit() {
    let (text, truncated) = truncate_body(&[b'a'; 5000], MAX_RESPONSE_BODY_BYTES);
    assert_eq!(text.len(), 1024);
    assert!(truncated);
    assert_eq!(truncate_body(b"abcdef", 5), ("abcde".into(), true));
}

#[test]
fn cuts_fall_on_character_boundaries() {
    // "é" is two bytes: the limit falls in the middle of the third one.
    let (text, truncated) = truncate_body("ééé".as_bytes(), 5);
    assert_eq!(text, "éé");
    assert!(truncated);
    let (text, _) = truncate_body("a😀".as_bytes(), 4);
    assert_eq!(text, "a");
}

#[test]
fn invalid_utf8_is_replaced_not_refused() {
    assert_eq!(truncate_body(b"a\xffb", 10), ("a\u{fffd}b".into(), false));
    // The replacement takes three bytes where the bad byte took one.
    let (text, truncated) = truncate_body(b"\xff\xff", 4);
    assert_eq!(text, "\u{fffd}");
    assert!(truncated);
}
