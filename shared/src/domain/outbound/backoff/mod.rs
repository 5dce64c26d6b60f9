//! What to do after each delivery attempt: the brief's exponential backoff with jitter,
//! longer waits for throttling subscribers, `Retry-After`, and per-subscription rate
//! slots. Pure decisions; the delivery service applies them.

mod rate;
mod retry_after;

use std::time::Duration;

pub use rate::{rate_slot, slot_still_usable};
pub use retry_after::parse_retry_after;

/// The retry schedule: attempt 1 immediately, then `initial_delay` doubling per attempt up
/// to `max_delay`, for `max_retries` retries after the first attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (`WEBHOOK_MAX_RETRIES`).
    pub max_retries: u32,
    /// The wait before the first retry (`WEBHOOK_INITIAL_DELAY`).
    pub initial_delay: Duration,
    /// The longest wait, whatever the attempt or `Retry-After` (`WEBHOOK_MAX_DELAY`).
    pub max_delay: Duration,
    /// The shortest wait after a throttling answer (429, 502, 504, a timeout): a
    /// subscriber that is overloaded gets at least this long to recover.
    pub throttle_floor: Duration,
}

impl Default for RetryPolicy {
    /// The brief's configuration: 5 retries, 5 s doubling up to 1 h; throttles wait 60 s.
    fn default() -> Self {
        Self {
            max_retries: 5,
            initial_delay: Duration::from_secs(5),
            max_delay: Duration::from_secs(3600),
            throttle_floor: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// Every attempt a delivery may get: the first and each retry.
    pub fn max_attempts(&self) -> u32 {
        self.max_retries.saturating_add(1)
    }
}

/// How one attempt went, as far as retrying is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptResult {
    /// A 2xx answer.
    Delivered { status: u16 },
    /// 410: the subscriber says this endpoint is gone for good.
    Gone,
    /// The subscriber is overloaded: 429, 502, 504 or no answer in time.
    Throttled {
        status: Option<u16>,
        retry_after: Option<Duration>,
    },
    /// Any other failure: 1xx, 3xx (redirects are not followed), other 4xx and 5xx, or
    /// no connection (`status` is `None`).
    Failed {
        status: Option<u16>,
        retry_after: Option<Duration>,
    },
}

/// Sorts an attempt's outcome: the `status` received (`None` when no response came),
/// whether the request timed out, and the response's parsed `Retry-After`.
pub fn classify(
    status: Option<u16>,
    timed_out: bool,
    retry_after: Option<Duration>,
) -> AttemptResult {
    match status {
        _ if timed_out => AttemptResult::Throttled {
            status,
            retry_after,
        },
        Some(code @ 200..=299) => AttemptResult::Delivered { status: code },
        Some(410) => AttemptResult::Gone,
        Some(429 | 502 | 504) => AttemptResult::Throttled {
            status,
            retry_after,
        },
        _ => AttemptResult::Failed {
            status,
            retry_after,
        },
    }
}

/// What happens to a delivery after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Done: the subscriber has it.
    Delivered,
    /// The endpoint is gone (410): the delivery fails and the subscription is turned off.
    Disable,
    /// Try again after this long.
    RetryIn(Duration),
    /// Out of retries: the delivery fails and goes to the dead-letter queue.
    GiveUp,
}

/// Decides what follows `result`, the outcome of attempt number `attempts_made` (1 for
/// the first).
///
/// After a failure the next attempt waits `initial_delay * 2^(attempts_made - 1)`, at
/// most `max_delay`, scaled by `0.8 + 0.4 * jitter` so that deliveries failing together
/// do not retry together. `jitter` is a uniform random number in `[0, 1)` (0.5 leaves
/// the delay as is; values outside are clamped). A throttle waits at least
/// `throttle_floor`. A `Retry-After` may lengthen the wait, never shorten it below ours,
/// and nothing waits longer than `max_delay`. After attempt `1 + max_retries` it gives up.
pub fn decide(
    policy: &RetryPolicy,
    attempts_made: u32,
    result: &AttemptResult,
    jitter: f64,
) -> Decision {
    let (throttled, retry_after) = match *result {
        AttemptResult::Delivered { .. } => return Decision::Delivered,
        AttemptResult::Gone => return Decision::Disable,
        AttemptResult::Throttled { retry_after, .. } => (true, retry_after),
        AttemptResult::Failed { retry_after, .. } => (false, retry_after),
    };
    if attempts_made > policy.max_retries {
        return Decision::GiveUp;
    }
    let max = policy.max_delay;
    let mut delay = jittered(backoff(policy, attempts_made), jitter).min(max);
    if throttled {
        delay = delay.max(policy.throttle_floor).min(max);
    }
    if let Some(asked) = retry_after {
        delay = asked.max(delay).min(max);
    }
    Decision::RetryIn(delay)
}

/// `initial_delay * 2^(attempts_made - 1)`, at most `max_delay`.
fn backoff(policy: &RetryPolicy, attempts_made: u32) -> Duration {
    let doublings = attempts_made.saturating_sub(1);
    2u32.checked_pow(doublings)
        .and_then(|factor| policy.initial_delay.checked_mul(factor))
        .map_or(policy.max_delay, |delay| delay.min(policy.max_delay))
}

fn jittered(delay: Duration, jitter: f64) -> Duration {
    let jitter = if jitter.is_finite() {
        jitter.clamp(0.0, 1.0)
    } else {
        0.5
    };
    Duration::try_from_secs_f64(delay.as_secs_f64() * (0.8 + 0.4 * jitter)).unwrap_or(Duration::MAX)
}

#[cfg(test)]
mod tests;
