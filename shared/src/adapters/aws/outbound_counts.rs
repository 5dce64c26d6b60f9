//! The counters behind `GET /api/v1/stats`, kept without ever counting rows.
//!
//! They live in [`COUNTER_SHARDS`] items (`COUNTERS#{n}`), each write picking one at
//! random, so that every publish and every status change adding to them does not make one
//! item (and its partition) hot. Changes are atomic `ADD`s written in the same transaction
//! as the record they count; a shard may go negative on its own (a delivery counted as
//! pending in one shard and as no longer pending in another), only the sum means anything.
//!
//! Attributes: `events`, `events#{type}`, `deliveries#{status}`, `success_latency_ms`.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::{AttributeValue as Av, Update};

use super::outbound_attrs::{key, Attrs, DLV_STATUS, SUCCESS_LATENCY};
use crate::domain::outbound::{Delivery, DeliveryStatus, EventType};
use crate::ports::outbound::DeliveryCounts;
use crate::ports::store::StoreResult;
use crate::ports::StoreError;

/// How many items the counters are spread over.
pub(super) const COUNTER_SHARDS: u32 = 8;

const EVENTS: &str = "events";
const EVENTS_OF_TYPE: &str = "events#";
const DELIVERIES_IN: &str = "deliveries#";

pub(super) fn counter_key(shard: u32) -> Attrs {
    key(format!("COUNTERS#{shard}"), "COUNTERS")
}

/// What one delivery adds to the counters: one in its status, and its latency while it is
/// a success.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Tally {
    pub status: DeliveryStatus,
    pub success_latency_ms: Option<u64>,
}

impl Tally {
    pub fn of(delivery: &Delivery) -> Self {
        Self {
            status: delivery.status,
            success_latency_ms: super::outbound_attrs::success_latency(delivery),
        }
    }

    /// The tally of a stored delivery item (projected to `dlv_status, success_latency_ms`).
    pub fn stored(attrs: &Attrs) -> StoreResult<Self> {
        let status = super::outbound_attrs::string(attrs, DLV_STATUS)?;
        Ok(Self {
            status: status
                .parse()
                .map_err(|e| super::outbound_attrs::corrupt(status, e))?,
            success_latency_ms: match attrs.get(SUCCESS_LATENCY) {
                Some(Av::N(n)) => Some(
                    n.parse()
                        .map_err(|e| super::outbound_attrs::corrupt(SUCCESS_LATENCY, e))?,
                ),
                _ => None,
            },
        })
    }

    /// A condition that holds while the stored delivery still has this tally (`None`: while
    /// there is none), so that a write counting the change from it applies exactly once.
    pub fn still_stored(stored: Option<Self>) -> (String, HashMap<String, Av>) {
        let Some(tally) = stored else {
            return ("attribute_not_exists(pk)".to_owned(), HashMap::new());
        };
        let mut values = HashMap::from([(
            ":old_status".to_owned(),
            Av::S(tally.status.as_str().to_owned()),
        )]);
        let latency = match tally.success_latency_ms {
            Some(ms) => {
                values.insert(":old_latency".to_owned(), Av::N(ms.to_string()));
                format!("{SUCCESS_LATENCY} = :old_latency")
            }
            None => format!("attribute_not_exists({SUCCESS_LATENCY})"),
        };
        (format!("{DLV_STATUS} = :old_status AND {latency}"), values)
    }
}

/// Changes to the counters, by attribute.
#[derive(Debug, Default)]
pub(super) struct Deltas(BTreeMap<String, i64>);

impl Deltas {
    fn add(&mut self, name: String, amount: i64) {
        *self.0.entry(name).or_default() += amount;
    }

    /// One more event of `event_type`.
    pub fn event(&mut self, event_type: &EventType) {
        self.add(EVENTS.to_owned(), 1);
        self.add(format!("{EVENTS_OF_TYPE}{event_type}"), 1);
    }

    /// A delivery moving from `from` (`None`: it is new) to `to`.
    pub fn transition(&mut self, from: Option<Tally>, to: Tally) {
        for (tally, sign) in [(from, -1), (Some(to), 1)] {
            let Some(tally) = tally else { continue };
            self.add(format!("{DELIVERIES_IN}{}", tally.status.as_str()), sign);
            if let Some(ms) = tally.success_latency_ms {
                self.add(
                    SUCCESS_LATENCY.to_owned(),
                    sign * i64::try_from(ms).unwrap_or(i64::MAX),
                );
            }
        }
        self.0.retain(|_, amount| *amount != 0);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The transaction item adding these changes to a random shard.
    pub fn update(&self, table: &str) -> StoreResult<Update> {
        let shard = rand::random_range(0..COUNTER_SHARDS);
        let mut names = HashMap::new();
        let mut values = HashMap::new();
        let mut adds = Vec::new();
        for (i, (name, amount)) in self.0.iter().enumerate() {
            names.insert(format!("#c{i}"), name.clone());
            values.insert(format!(":c{i}"), Av::N(amount.to_string()));
            adds.push(format!("#c{i} :c{i}"));
        }
        Update::builder()
            .table_name(table)
            .set_key(Some(counter_key(shard)))
            .update_expression(format!("ADD {}", adds.join(", ")))
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .build()
            .map_err(StoreError::unavailable)
    }
}

/// The counts the shards add up to.
pub(super) fn sum(shards: &[Attrs]) -> DeliveryCounts {
    let mut totals: BTreeMap<&str, i64> = BTreeMap::new();
    for shard in shards {
        for (name, value) in shard {
            if let Some(amount) = value.as_n().ok().and_then(|n| n.parse::<i64>().ok()) {
                *totals.entry(name.as_str()).or_default() += amount;
            }
        }
    }
    let count = |name: &str| u64::try_from(totals.get(name).copied().unwrap_or(0)).unwrap_or(0);
    let status = |status: DeliveryStatus| count(&format!("{DELIVERIES_IN}{}", status.as_str()));
    DeliveryCounts {
        events: count(EVENTS),
        succeeded: status(DeliveryStatus::Success),
        failed: status(DeliveryStatus::Failed),
        pending: status(DeliveryStatus::Pending) + status(DeliveryStatus::Retrying),
        success_latency_ms_total: count(SUCCESS_LATENCY),
        events_by_type: totals
            .iter()
            .filter_map(|(name, amount)| {
                let event_type = name.strip_prefix(EVENTS_OF_TYPE)?;
                let amount = u64::try_from(*amount).ok().filter(|n| *n > 0)?;
                Some((event_type.to_owned(), amount))
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tally(status: DeliveryStatus, latency: Option<u64>) -> Tally {
        Tally {
            status,
            success_latency_ms: latency,
        }
    }

    fn shard(pairs: &[(&str, i64)]) -> Attrs {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Av::N(v.to_string())))
            .collect()
    }

    #[test]
    fn a_status_change_moves_one_count_and_the_success_latency() {
        let mut deltas = Deltas::default();
        deltas.transition(
            Some(tally(DeliveryStatus::Retrying, None)),
            tally(DeliveryStatus::Success, Some(42)),
        );
        let expected = BTreeMap::from([
            ("deliveries#retrying".to_owned(), -1),
            ("deliveries#success".to_owned(), 1),
            ("success_latency_ms".to_owned(), 42),
        ]);
        assert_eq!(deltas.0, expected);
    }

    #[test]
    fn an_unchanged_tally_changes_nothing() {
        let mut deltas = Deltas::default();
        let same = tally(DeliveryStatus::Retrying, None);
        deltas.transition(Some(same), same);
        assert!(deltas.is_empty());
    }

    #[test]
    fn shards_add_up_and_negative_shards_cancel_out() {
        let counts = sum(&[
            shard(&[
                ("events", 2),
                ("events#build.done", 2),
                ("deliveries#pending", 3),
            ]),
            shard(&[("deliveries#pending", -2), ("deliveries#success", 2)]),
            shard(&[("deliveries#retrying", 1), ("success_latency_ms", 30)]),
        ]);
        assert_eq!(counts.events, 2);
        assert_eq!(counts.pending, 2);
        assert_eq!(counts.succeeded, 2);
        assert_eq!(counts.success_latency_ms_total, 30);
        assert_eq!(
            counts.events_by_type,
            BTreeMap::from([("build.done".to_owned(), 2)])
        );
    }
}
