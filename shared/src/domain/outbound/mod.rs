//! Outbound events: what Nexus services publish, who subscribes to it, and how one
//! delivery is signed, retried and recorded. Decisions are plain values (a [`Decision`],
//! a rate-limit slot, a list of headers); the services carry them out.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

/// Display, FromStr, TryFrom<String> (both through the type's `parse`) and Serialize as a
/// plain string, for the outbound string newtypes (ids, event types and patterns).
/// Defined before the modules below, so that they can use it.
macro_rules! string_newtype_impls {
    ($name:ident) => {
        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::domain::DomainError;

            fn from_str(value: &str) -> Result<Self, Self::Err> {
                Self::parse(value)
            }
        }

        impl TryFrom<String> for $name {
            type Error = $crate::domain::DomainError;

            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::parse(&value)
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }
    };
}

pub mod backoff;
pub mod delivery;
pub mod event;
pub mod ids;
pub mod signing;
pub mod subscription;
pub mod target;

pub use backoff::{
    classify, decide, parse_retry_after, rate_slot, slot_still_usable, AttemptResult, Decision,
    RetryPolicy,
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
pub fn after(at: DateTime<Utc>, duration: Duration) -> DateTime<Utc> {
    TimeDelta::from_std(duration)
        .ok()
        .and_then(|delta| at.checked_add_signed(delta))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}
