use super::*;

const NO_JITTER: f64 = 0.5;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn failed(status: u16) -> AttemptResult {
    classify(Some(status), false, None)
}

fn retry_in(decision: Decision) -> Duration {
    match decision {
        Decision::RetryIn(delay) => delay,
        other => panic!("expected a retry, got {other:?}"),
    }
}

#[test]
fn the_default_policy_is_the_briefs_configuration() {
    let policy = RetryPolicy::default();
    assert_eq!(policy.max_retries, 5);
    assert_eq!(policy.initial_delay, secs(5));
    assert_eq!(policy.max_delay, secs(3600));
    assert_eq!(policy.throttle_floor, secs(60));
    assert_eq!(policy.max_attempts(), 6);
}

#[test]
fn a_500_is_retried_on_the_briefs_schedule_then_given_up() {
    let policy = RetryPolicy::default();
    let delays: Vec<Duration> = (1..=5)
        .map(|n| retry_in(decide(&policy, n, &failed(500), NO_JITTER)))
        .collect();
    assert_eq!(delays, [secs(5), secs(10), secs(20), secs(40), secs(80)]);
    assert_eq!(
        decide(&policy, 6, &failed(500), NO_JITTER),
        Decision::GiveUp
    );
}

#[test]
fn delays_stop_growing_at_max_delay() {
    let policy = RetryPolicy {
        max_retries: 40,
        ..RetryPolicy::default()
    };
    assert_eq!(
        retry_in(decide(&policy, 10, &failed(500), NO_JITTER)),
        secs(2560)
    );
    for n in [11, 12, 32, 33, 40] {
        assert_eq!(
            retry_in(decide(&policy, n, &failed(500), 0.999)),
            secs(3600),
            "{n}"
        );
    }
}

#[test]
fn jitter_spreads_delays_between_80_and_120_percent() {
    let policy = RetryPolicy::default();
    let at = |jitter| retry_in(decide(&policy, 2, &failed(503), jitter));
    assert_eq!(at(0.0), secs(8));
    assert_eq!(at(0.25).as_millis(), 9_000);
    let top = at(0.999_999);
    assert!(
        top > Duration::from_millis(11_999) && top < secs(12),
        "{top:?}"
    );
    // Out-of-range and non-numbers never escape the band.
    assert_eq!(at(-3.0), secs(8));
    assert_eq!(at(7.0), secs(12));
    assert_eq!(at(f64::NAN), secs(10));
}

#[test]
fn a_2xx_is_delivered_and_a_410_disables_whatever_the_attempt() {
    let policy = RetryPolicy::default();
    for status in [200, 201, 204, 299] {
        assert_eq!(failed(status), AttemptResult::Delivered { status });
        assert_eq!(
            decide(&policy, 1, &failed(status), 0.1),
            Decision::Delivered
        );
        assert_eq!(
            decide(&policy, 99, &failed(status), 0.1),
            Decision::Delivered
        );
    }
    assert_eq!(failed(410), AttemptResult::Gone);
    assert_eq!(
        decide(&policy, 1, &AttemptResult::Gone, 0.1),
        Decision::Disable
    );
    assert_eq!(
        decide(&policy, 99, &AttemptResult::Gone, 0.1),
        Decision::Disable
    );
}

#[test]
fn redirects_client_errors_server_errors_and_refused_connections_are_failures() {
    for status in [
        100, 199, 300, 301, 302, 304, 307, 308, 400, 401, 404, 409, 500, 501, 503,
    ] {
        assert_eq!(
            failed(status),
            AttemptResult::Failed {
                status: Some(status),
                retry_after: None
            },
            "{status}"
        );
    }
    assert_eq!(
        classify(None, false, None),
        AttemptResult::Failed {
            status: None,
            retry_after: None
        }
    );
}

#[test]
fn rate_limits_gateway_errors_and_timeouts_are_throttles() {
    for status in [429, 502, 504] {
        assert!(
            matches!(failed(status), AttemptResult::Throttled { status: Some(s), .. } if s == status)
        );
    }
    assert_eq!(
        classify(None, true, None),
        AttemptResult::Throttled {
            status: None,
            retry_after: None
        }
    );
    // A timeout after the status line still counts as a timeout.
    assert!(matches!(
        classify(Some(200), true, None),
        AttemptResult::Throttled { .. }
    ));
}

#[test]
fn throttles_back_off_at_least_the_floor_and_longer_when_the_schedule_says_so() {
    let policy = RetryPolicy::default();
    let throttled = classify(Some(429), false, None);
    assert_eq!(
        retry_in(decide(&policy, 1, &throttled, NO_JITTER)),
        secs(60)
    );
    assert_eq!(
        retry_in(decide(&policy, 5, &throttled, NO_JITTER)),
        secs(80)
    );
    assert_eq!(decide(&policy, 6, &throttled, NO_JITTER), Decision::GiveUp);
}

#[test]
fn retry_after_lengthens_the_wait_up_to_max_delay_but_never_shortens_it() {
    let policy = RetryPolicy::default();
    let throttle = |s| classify(Some(429), false, Some(secs(s)));
    assert_eq!(
        retry_in(decide(&policy, 1, &throttle(120), NO_JITTER)),
        secs(120)
    );
    assert_eq!(
        retry_in(decide(&policy, 1, &throttle(1), NO_JITTER)),
        secs(60)
    );
    assert_eq!(
        retry_in(decide(&policy, 1, &throttle(86_400), NO_JITTER)),
        secs(3600)
    );
    let unavailable = |s| classify(Some(503), false, Some(secs(s)));
    assert_eq!(
        retry_in(decide(&policy, 1, &unavailable(30), NO_JITTER)),
        secs(30)
    );
    assert_eq!(
        retry_in(decide(&policy, 3, &unavailable(2), NO_JITTER)),
        secs(20)
    );
}

#[test]
fn a_short_test_schedule_caps_even_the_throttle_floor() {
    let policy = RetryPolicy {
        max_retries: 2,
        initial_delay: Duration::from_millis(50),
        max_delay: Duration::from_millis(200),
        throttle_floor: secs(60),
    };
    assert_eq!(
        retry_in(decide(&policy, 1, &failed(500), NO_JITTER)),
        Duration::from_millis(50)
    );
    assert_eq!(
        retry_in(decide(&policy, 1, &failed(429), NO_JITTER)),
        Duration::from_millis(200)
    );
    assert_eq!(
        decide(&policy, 3, &failed(500), NO_JITTER),
        Decision::GiveUp
    );
}

#[test]
fn no_retries_means_the_first_failure_gives_up() {
    let policy = RetryPolicy {
        max_retries: 0,
        ..RetryPolicy::default()
    };
    assert_eq!(
        decide(&policy, 1, &failed(500), NO_JITTER),
        Decision::GiveUp
    );
}
