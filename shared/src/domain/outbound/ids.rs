//! Prefixed ULID identifiers of outbound subscriptions (`sub_…`), events (`evt_…`) and
//! deliveries (`dlv_…`).
//!
//! The prefix says what an id names wherever it shows up (logs, URLs, a receiver's
//! dedup table); the ULID sorts by creation time, so keys range-scan in order.

use serde::Deserialize;
use ulid::Ulid;

use crate::domain::DomainError;

/// Length of a ULID in Crockford base32.
const ULID_LEN: usize = 26;

/// Checks `value` is `prefix` followed by a ULID and returns its canonical spelling: the
/// ULID in lowercase, so the same id is always the same key.
fn parse_prefixed(
    field: &'static str,
    prefix: &'static str,
    value: &str,
) -> Result<String, DomainError> {
    let invalid = || DomainError::new(field, format!("must be '{prefix}' followed by a ULID"));
    let ulid = value.strip_prefix(prefix).ok_or_else(invalid)?;
    // 26 base32 digits hold 130 bits; the ulid crate drops the top two instead of
    // refusing them, which would give `8…` and `0…` the same id.
    if ulid.len() != ULID_LEN || !matches!(ulid.as_bytes()[0], b'0'..=b'7') {
        return Err(invalid());
    }
    let ulid = Ulid::from_string(ulid).map_err(|_| invalid())?;
    Ok(format_prefixed(prefix, ulid))
}

fn format_prefixed(prefix: &str, ulid: Ulid) -> String {
    format!("{prefix}{}", ulid.to_string().to_ascii_lowercase())
}

macro_rules! prefixed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal, $field:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
        #[serde(try_from = "String")]
        pub struct $name(String);

        impl $name {
            /// The prefix every id of this kind starts with.
            pub const PREFIX: &'static str = $prefix;

            /// A fresh id: a new ULID, so ids sort by creation time.
            pub fn new() -> Self {
                Self(format_prefixed($prefix, Ulid::new()))
            }

            /// Parses an id as clients send it; the ULID may be in either case.
            pub fn parse(value: &str) -> Result<Self, DomainError> {
                parse_prefixed($field, $prefix, value).map(Self)
            }

            /// The canonical spelling, prefix and lowercase ULID.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        string_newtype_impls!($name);
    };
}

prefixed_id!(
    /// A webhook subscription: `sub_` and a lowercase ULID.
    SubscriptionId,
    "sub_",
    "subscription_id"
);

prefixed_id!(
    /// A published event: `evt_` and a lowercase ULID. It is the payload's `id`.
    EventId,
    "evt_",
    "event_id"
);

prefixed_id!(
    /// One event's delivery to one subscription: `dlv_` and a lowercase ULID. It is the
    /// `X-Nexus-Delivery` and `webhook-id` header, the same on every attempt, so receivers
    /// can drop a redelivery.
    OutboundDeliveryId,
    "dlv_",
    "delivery_id"
);

#[cfg(test)]
mod tests {
    use super::*;

    const ULID: &str = "01arz3ndektsv4rrffq69g5fav";

    #[test]
    fn fresh_ids_carry_their_prefix_and_a_lowercase_ulid() {
        let id = SubscriptionId::new();
        assert!(id.as_str().starts_with("sub_"));
        assert_eq!(id.as_str().len(), 4 + ULID_LEN);
        assert_eq!(id.as_str(), id.as_str().to_ascii_lowercase());
        assert_eq!(SubscriptionId::parse(id.as_str()), Ok(id));
        assert!(EventId::new().as_str().starts_with("evt_"));
        assert!(OutboundDeliveryId::new().as_str().starts_with("dlv_"));
    }

    #[test]
    fn an_uppercase_ulid_parses_to_the_canonical_lowercase_id() {
        let id = EventId::parse(&format!("evt_{}", ULID.to_ascii_uppercase())).unwrap();
        assert_eq!(id.as_str(), format!("evt_{ULID}"));
        assert_eq!(id.to_string(), format!("evt_{ULID}"));
    }

    #[test]
    fn wrong_prefixes_lengths_and_alphabets_are_refused_with_the_field_name() {
        for bad in [
            String::new(),
            ULID.to_owned(),
            format!("evt_{ULID}"),
            format!("SUB_{ULID}"),
            format!("sub_{}", &ULID[1..]),
            format!("sub_{ULID}0"),
            format!("sub_{}u", &ULID[1..]),
            // The first character above 7 overflows 128 bits.
            format!("sub_8{}", &ULID[1..]),
        ] {
            let error = SubscriptionId::parse(&bad).unwrap_err();
            assert_eq!(error.field, "subscription_id", "{bad}");
        }
        assert_eq!(
            OutboundDeliveryId::parse("dlv_x").unwrap_err().field,
            "delivery_id"
        );
        assert_eq!(EventId::parse("evt_x").unwrap_err().field, "event_id");
    }

    #[test]
    fn ids_serialize_as_their_string_and_are_validated_when_deserialized() {
        let id = OutboundDeliveryId::parse(&format!("dlv_{ULID}")).unwrap();
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"dlv_{ULID}\""));
        assert_eq!(
            serde_json::from_str::<OutboundDeliveryId>(&json).unwrap(),
            id
        );
        assert!(serde_json::from_str::<OutboundDeliveryId>("\"dlv_nope\"").is_err());
        assert!(serde_json::from_str::<OutboundDeliveryId>(&format!("\"sub_{ULID}\"")).is_err());
    }

    #[test]
    fn ids_made_later_sort_after_earlier_ones() {
        let first = EventId::parse("evt_01arz3ndektsv4rrffq69g5fav").unwrap();
        let later = EventId::parse("evt_01bx5zzkbkactav9wevgemmvrz").unwrap();
        assert!(first < later);
    }
}
