//! Outbound events: what Nexus services publish, who subscribes to it, and how one
//! delivery is signed, retried and recorded. Decisions are plain values (a [`Decision`],
//! a rate-limit slot, a list of headers); the services carry them out.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

pub mod backoff;
pub mod delivery;
pub mod event;
pub mod ids;
pub mod signing;
pub mod subscription;
pub mod target;

pub use backoff::{
    classify, decide, parse_retry_after, rate_slot, AttemptResult, Decision, RetryPolicy,
};
pub use delivery::{truncate_body, Attempt, Delivery, DeliveryStatus, MAX_RESPONSE_BODY_BYTES};
pub use event::{Event, EventPattern, EventType, NewEvent};
pub use ids::{EventId, OutboundDeliveryId, SubscriptionId};
pub use signing::{nexus_signature, signature_headers, standard_signature, verify_nexus_signature};
pub use subscription::{
    generate_secret, validate_description, validate_name, validate_rate_limit, Filters,
    SigningSecret, Subscription, DEFAULT_ROTATION_GRACE, SECRET_PREFIX, SECRET_RANDOM_BYTES,
};
pub use target::{is_forbidden_address, TargetUrl};

/// `at + duration`, or the end of time when that overflows: a wait too long to represent
/// is as good as forever.
fn after(at: DateTime<Utc>, duration: Duration) -> DateTime<Utc> {
    TimeDelta::from_std(duration)
        .ok()
        .and_then(|delta| at.checked_add_signed(delta))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}
