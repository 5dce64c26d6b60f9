//! Per-subscription rate limiting by GCRA: each request reserves the next free slot.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::domain::outbound::after;

/// The next send slot for a subscription limited to `per_minute` requests (GCRA).
///
/// `stored_tat` is the theoretical arrival time kept for the subscription (`None` when it
/// has none yet). Returns how long a request must wait for the slot and the TAT that
/// taking it stores. Slots are `60 s / per_minute` apart. The stores always take the slot
/// (store the new TAT) and the caller waits for it, so a burst is spread out, never
/// dropped, and each request asks once; taking it must be a compare-and-set on the old
/// TAT, so that concurrent workers never share a slot.
pub fn rate_slot(
    stored_tat: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    per_minute: u32,
) -> (Duration, DateTime<Utc>) {
    let interval = rate_interval(per_minute);
    // A TAT in the past is idle capacity that was not used; it does not accumulate.
    let tat = stored_tat.map_or(now, |stored| stored.max(now));
    let wait = (tat - now).to_std().unwrap_or(Duration::ZERO);
    (wait, after(tat, interval))
}

/// Time between two slots of a subscription limited to `per_minute` requests.
fn rate_interval(per_minute: u32) -> Duration {
    Duration::from_secs(60) / per_minute.max(1)
}

/// Whether a slot is still worth sending in at `now`. Taking it may have been slow
/// (contended compare-and-sets); a slot used more than a quarter interval late would send
/// on the heels of the next slot's owner, so it is left unused (which only lowers the rate).
pub fn slot_still_usable(slot: DateTime<Utc>, now: DateTime<Utc>, per_minute: u32) -> bool {
    after(slot, rate_interval(per_minute) / 4) >= now
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;

    fn at(millis: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(1_700_000_000_000 + millis).unwrap()
    }

    #[test]
    fn the_first_request_goes_now_and_books_the_next_slot_one_interval_later() {
        assert_eq!(rate_slot(None, at(0), 60), (Duration::ZERO, at(1_000)));
    }

    #[test]
    fn a_burst_is_spread_one_interval_apart() {
        let mut tat = None;
        let mut waits = Vec::new();
        for _ in 0..4 {
            let (wait, next) = rate_slot(tat, at(0), 120);
            waits.push(wait.as_millis());
            tat = Some(next);
        }
        assert_eq!(waits, [0, 500, 1_000, 1_500]);
        assert_eq!(tat, Some(at(2_000)));
    }

    #[test]
    fn an_idle_subscription_does_not_save_up_a_burst() {
        let (wait, next) = rate_slot(Some(at(0)), at(60_000), 60);
        assert_eq!(wait, Duration::ZERO);
        assert_eq!(next, at(61_000));
    }

    #[test]
    fn a_request_between_slots_waits_only_for_the_rest_of_the_interval() {
        let (wait, next) = rate_slot(Some(at(1_000)), at(400), 60);
        assert_eq!(wait, Duration::from_millis(600));
        assert_eq!(next, at(2_000));
    }

    #[test]
    fn high_limits_keep_sub_millisecond_intervals() {
        let (_, next) = rate_slot(None, at(0), 100_000);
        assert_eq!(next - at(0), TimeDelta::microseconds(600));
        // Zero is refused by validation; here it behaves as one per minute, not a panic.
        assert_eq!(rate_slot(None, at(0), 0).1, at(60_000));
    }

    #[test]
    fn a_slot_is_usable_until_a_quarter_interval_late() {
        // 60 per minute: slots a second apart, usable up to 250 ms late.
        assert!(slot_still_usable(at(1_000), at(0), 60));
        assert!(slot_still_usable(at(1_000), at(1_250), 60));
        assert!(!slot_still_usable(at(1_000), at(1_251), 60));
    }
}
