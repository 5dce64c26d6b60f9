//! The outbound table's transactional writes: a publish (event, deliveries, idempotency
//! record and counters, all or nothing per transaction) and saving a delivery together
//! with the counters its status change moves.

use std::collections::hash_map::{Entry, HashMap};
use std::time::Duration;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue as Av, Put, TransactWriteItem};
use chrono::{DateTime, Utc};

use super::outbound::DynamoOutbound;
use super::outbound_attrs::{
    delivery_item, delivery_key, event_item, idempotency_key, string, text_time, Attrs, DLV_STATUS,
    SUCCESS_LATENCY,
};
use super::outbound_counts::{Deltas, Tally};
use crate::domain::outbound::{Delivery, Event, EventId, OutboundDeliveryId};
use crate::ports::outbound::{Publication, PublishOutcome};
use crate::ports::store::StoreResult;
use crate::ports::StoreError;

/// DynamoDB's limit on the items of one transaction.
const MAX_TRANSACTION_ITEMS: usize = 100;
/// How much item data one packed transaction carries at most: DynamoDB allows 4 MB, and
/// the estimate below counts attribute values only.
const MAX_PACKED_BYTES: usize = 3 * 1024 * 1024;
/// Tries of an optimistic write (a transaction, a compare-and-set) that lost a race.
pub(super) const MAX_TRIES: u32 = 8;

/// Why a transaction did not apply.
enum TransactError {
    /// The condition of the item at this index failed.
    Condition(usize),
    Store(StoreError),
}

impl DynamoOutbound {
    /// One transaction when it fits (idempotency record, event, counters and up to 97
    /// deliveries), else chunks of 100 items, the first carrying the idempotency record.
    pub(super) async fn publish_transactions(
        &self,
        event: &Event,
        deliveries: &[Delivery],
        idempotency_key: Option<&str>,
        now: DateTime<Utc>,
    ) -> StoreResult<PublishOutcome> {
        let mut rest = deliveries;
        let mut first = true;
        loop {
            let mut writes = Writes::default();
            if first {
                if let Some(key) = idempotency_key {
                    writes.idempotency_record(self, key, event, deliveries, now)?;
                }
                writes.event(self, event_item(event)?, event)?;
            }
            // One item is left for the counters.
            let room = MAX_TRANSACTION_ITEMS - writes.items.len() - 1;
            let (chunk, tail) = rest.split_at(room.min(rest.len()));
            for delivery in chunk {
                writes.delivery(self, delivery_item(delivery)?, delivery)?;
            }
            match (
                self.transact(writes.finish(&self.table)?).await,
                idempotency_key,
            ) {
                (Ok(()), _) => {}
                // The idempotency record (item 0 of the first transaction) exists.
                (Err(TransactError::Condition(0)), Some(key)) if first => {
                    return self.first_publish(key).await;
                }
                (Err(TransactError::Condition(index)), _) => {
                    return Err(StoreError::Corrupt(format!(
                        "publish item {index} already exists"
                    )))
                }
                (Err(TransactError::Store(error)), _) => return Err(error),
            }
            rest = tail;
            first = false;
            if rest.is_empty() {
                return Ok(PublishOutcome::Stored);
            }
        }
    }

    /// Publishes a batch in as few transactions as fit: consecutive publications share one
    /// (each whole, with its idempotency record, event and deliveries, and one counters
    /// update for all) up to DynamoDB's 100 items. So a batch of small fan-outs costs a few
    /// round trips, not one per event. A publication too large to share goes alone through
    /// [`publish_transactions`](Self::publish_transactions). When an idempotency record
    /// already exists, that publication answers with its first result and the others of
    /// its transaction are tried again without it.
    pub(super) async fn publish_packed(
        &self,
        publications: &[Publication],
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<PublishOutcome>> {
        let mut outcomes: Vec<Option<PublishOutcome>> = vec![None; publications.len()];
        // A retried batch finds its records in one read, rather than one cancelled
        // transaction (of up to 100 items) per publication already stored. A lone
        // publication learns it from its own transaction in the same one round trip.
        if publications.len() > 1 {
            for (index, outcome) in self.first_publishes(publications, now).await? {
                outcomes[index] = Some(outcome);
            }
        }
        let mut waiting: Vec<usize> = (0..publications.len())
            .filter(|&index| outcomes[index].is_none())
            .collect();
        while let Some(&first) = waiting.first() {
            let alone = &publications[first];
            // One item is left for the counters.
            if items_of(alone) > MAX_TRANSACTION_ITEMS - 1 {
                let key = alone.idempotency_key.as_deref();
                let outcome = self
                    .publish_transactions(&alone.event, &alone.deliveries, key, now)
                    .await?;
                outcomes[first] = Some(outcome);
                waiting.remove(0);
                continue;
            }
            let mut pack = Pack::default();
            for &index in &waiting {
                if !pack.add(self, index, &publications[index], now)? {
                    break;
                }
            }
            let Pack {
                writes,
                owners,
                members,
                ..
            } = pack;
            match self.transact(writes.finish(&self.table)?).await {
                Ok(()) => {
                    for index in waiting.drain(..members.len()) {
                        outcomes[index] = Some(PublishOutcome::Stored);
                    }
                }
                Err(TransactError::Condition(item)) => {
                    let Some(&(index, true)) = owners.get(item) else {
                        return Err(StoreError::Corrupt(format!(
                            "publish item {item} already exists"
                        )));
                    };
                    let key = publications[index]
                        .idempotency_key
                        .as_deref()
                        .expect("an idempotency item has a key");
                    outcomes[index] = Some(self.first_publish(key).await?);
                    waiting.retain(|&i| i != index);
                }
                Err(TransactError::Store(error)) => return Err(error),
            }
        }
        Ok(outcomes
            .into_iter()
            .map(|outcome| outcome.expect("every publication was decided"))
            .collect())
    }

    /// A compare-and-set on the stored status: the counters move from the status this
    /// write replaces, exactly once, however many writers race.
    pub(super) async fn save_counted(&self, delivery: &Delivery) -> StoreResult<()> {
        let item = delivery_item(delivery)?;
        let tally = Tally::of(delivery);
        let projection = format!("{DLV_STATUS}, {SUCCESS_LATENCY}");
        for attempt in 0..MAX_TRIES {
            let stored = self
                .get(delivery_key(&delivery.id), Some(&projection))
                .await?
                .map(|attrs| Tally::stored(&attrs))
                .transpose()?;
            let (condition, values) = Tally::still_stored(stored);
            let mut deltas = Deltas::default();
            deltas.transition(stored, tally);
            let lost_race = if deltas.is_empty() {
                let result = self
                    .client
                    .put_item()
                    .table_name(&self.table)
                    .set_item(Some(item.clone()))
                    .condition_expression(condition)
                    .set_expression_attribute_values(Some(values).filter(|v| !v.is_empty()))
                    .send()
                    .await;
                match result {
                    Ok(_) => false,
                    Err(error) if is_lost_race(&error) => true,
                    Err(error) => return Err(StoreError::unavailable(error)),
                }
            } else {
                let update = deltas.update(&self.table)?;
                let items = vec![
                    self.put(item.clone(), &condition, Some(values))?,
                    TransactWriteItem::builder().update(update).build(),
                ];
                match self.transact(items).await {
                    Ok(()) => false,
                    Err(TransactError::Condition(_)) => true,
                    Err(TransactError::Store(error)) => return Err(error),
                }
            };
            if !lost_race {
                return Ok(());
            }
            pause(attempt).await;
        }
        Err(contended("saving a delivery"))
    }

    fn put(
        &self,
        item: Attrs,
        condition: &str,
        values: Option<Attrs>,
    ) -> StoreResult<TransactWriteItem> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(condition)
            .set_expression_attribute_values(values.filter(|v| !v.is_empty()))
            .build()
            .map_err(StoreError::unavailable)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// Runs a transaction, trying again while it conflicts with another one in flight.
    async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<(), TransactError> {
        for attempt in 0..MAX_TRIES {
            let result = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .send()
                .await;
            let Err(error) = result else { return Ok(()) };
            let codes = cancellation_codes(&error);
            if let Some(index) = codes.iter().position(|c| c == "ConditionalCheckFailed") {
                return Err(TransactError::Condition(index));
            }
            if !codes.iter().any(|c| c == "TransactionConflict") {
                return Err(TransactError::Store(StoreError::unavailable(error)));
            }
            pause(attempt).await;
        }
        Err(TransactError::Store(contended("transaction")))
    }

    /// What the first publish with `key` stored.
    async fn first_publish(&self, key: &str) -> StoreResult<PublishOutcome> {
        let record = self
            .get(idempotency_key(key), None)
            .await?
            .ok_or_else(|| StoreError::Corrupt("idempotency record vanished".into()))?;
        duplicate_of(&record)
    }

    /// The first publish of every key of `publications` that has a live idempotency record
    /// at `now`, by the publication's index: one batch read.
    async fn first_publishes(
        &self,
        publications: &[Publication],
        now: DateTime<Utc>,
    ) -> StoreResult<HashMap<usize, PublishOutcome>> {
        let mut indexes: HashMap<String, usize> = HashMap::new();
        let mut wanted = Vec::new();
        for (index, publication) in publications.iter().enumerate() {
            let Some(key) = publication.idempotency_key.as_deref() else {
                continue;
            };
            let record_key = idempotency_key(key);
            let pk = string(&record_key, "pk")?.to_owned();
            // A key given twice is read once (a batch read refuses duplicates).
            if let Entry::Vacant(entry) = indexes.entry(pk) {
                entry.insert(index);
                wanted.push(record_key);
            }
        }
        if wanted.is_empty() {
            return Ok(HashMap::new());
        }
        let mut found = HashMap::new();
        for record in self.batch_get(wanted).await? {
            // An expired record lingers until TTL deletes it: it no longer counts.
            let expires_at = record
                .get("expires_at")
                .and_then(|v| v.as_n().ok())
                .and_then(|n| n.parse::<i64>().ok());
            if expires_at.is_some_and(|at| at <= now.timestamp()) {
                continue;
            }
            if let Some(&index) = indexes.get(string(&record, "pk")?) {
                found.insert(index, duplicate_of(&record)?);
            }
        }
        Ok(found)
    }

    fn idempotency_put(
        &self,
        key: &str,
        event: &Event,
        deliveries: &[Delivery],
        now: DateTime<Utc>,
    ) -> StoreResult<TransactWriteItem> {
        let expires_at =
            now + chrono::TimeDelta::from_std(self.idempotency_ttl).unwrap_or_default();
        let mut record = idempotency_key(key);
        record.extend([
            ("event_id".to_owned(), Av::S(event.id.to_string())),
            (
                "delivery_ids".to_owned(),
                Av::L(deliveries.iter().map(|d| Av::S(d.id.to_string())).collect()),
            ),
            ("created_at".to_owned(), Av::S(text_time(now))),
            (
                "expires_at".to_owned(),
                Av::N(expires_at.timestamp().to_string()),
            ),
        ]);
        // An expired record lingers until TTL deletes it (moto never does): it no longer
        // counts.
        let values = Attrs::from([(":now".to_owned(), Av::N(now.timestamp().to_string()))]);
        self.put(
            record,
            "attribute_not_exists(pk) OR expires_at <= :now",
            Some(values),
        )
    }
}

/// The cancellation reason codes of a cancelled transaction, one per item (empty when the
/// call failed otherwise).
fn cancellation_codes<R>(error: &SdkError<TransactWriteItemsError, R>) -> Vec<String> {
    match error.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) => cancelled
            .cancellation_reasons()
            .iter()
            .map(|r| r.code().unwrap_or("None").to_owned())
            .collect(),
        _ => Vec::new(),
    }
}

/// A short, growing, jittered wait before trying a lost race again.
pub(super) async fn pause(attempt: u32) {
    let base = 5u64 << attempt.min(6);
    let jitter = rand::random_range(0..=base);
    tokio::time::sleep(Duration::from_millis(base + jitter)).await;
}

pub(super) fn contended(what: &str) -> StoreError {
    StoreError::unavailable(std::io::Error::other(format!(
        "{what} kept losing to concurrent writers"
    )))
}

/// Whether a single-item write was refused because another writer got there first: its
/// condition failed, or the item was part of a transaction in flight.
pub(super) fn is_lost_race<E: aws_sdk_dynamodb::error::ProvideErrorMetadata, R>(
    error: &SdkError<E, R>,
) -> bool {
    matches!(
        error.as_service_error().and_then(|e| e.code()),
        Some("ConditionalCheckFailedException" | "TransactionConflictException")
    )
}

/// What an idempotency record says the first publish stored.
fn duplicate_of(record: &Attrs) -> StoreResult<PublishOutcome> {
    let delivery_ids = match record.get("delivery_ids") {
        Some(Av::L(ids)) => ids
            .iter()
            .map(|id| {
                let id = id
                    .as_s()
                    .map_err(|_| StoreError::Corrupt("delivery id".into()))?;
                OutboundDeliveryId::parse(id).map_err(|e| StoreError::Corrupt(e.to_string()))
            })
            .collect::<StoreResult<_>>()?,
        _ => return Err(StoreError::Corrupt("idempotency record without ids".into())),
    };
    Ok(PublishOutcome::Duplicate {
        event_id: EventId::parse(string(record, "event_id")?)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        delivery_ids,
    })
}

/// The items one publication writes: its idempotency record, its event, its deliveries.
fn items_of(publication: &Publication) -> usize {
    usize::from(publication.idempotency_key.is_some()) + 1 + publication.deliveries.len()
}

/// The writes of one publish transaction: new items, and the counters they move.
#[derive(Default)]
struct Writes {
    items: Vec<TransactWriteItem>,
    deltas: Deltas,
}

impl Writes {
    fn idempotency_record(
        &mut self,
        store: &DynamoOutbound,
        key: &str,
        event: &Event,
        deliveries: &[Delivery],
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let record = store.idempotency_put(key, event, deliveries, now)?;
        self.items.push(record);
        Ok(())
    }

    /// `item` is the event's item (`event_item`).
    fn event(&mut self, store: &DynamoOutbound, item: Attrs, event: &Event) -> StoreResult<()> {
        self.items
            .push(store.put(item, "attribute_not_exists(pk)", None)?);
        self.deltas.event(&event.event_type);
        Ok(())
    }

    /// `item` is the delivery's item (`delivery_item`).
    fn delivery(
        &mut self,
        store: &DynamoOutbound,
        item: Attrs,
        delivery: &Delivery,
    ) -> StoreResult<()> {
        self.items
            .push(store.put(item, "attribute_not_exists(pk)", None)?);
        self.deltas.transition(None, Tally::of(delivery));
        Ok(())
    }

    /// The transaction's items, the counters update last.
    fn finish(mut self, table: &str) -> StoreResult<Vec<TransactWriteItem>> {
        if !self.deltas.is_empty() {
            let update = self.deltas.update(table)?;
            self.items
                .push(TransactWriteItem::builder().update(update).build());
        }
        Ok(self.items)
    }
}

/// Whole publications gathered into one transaction.
#[derive(Default)]
struct Pack {
    writes: Writes,
    /// Per item: the publication it belongs to, and whether it is its idempotency record.
    owners: Vec<(usize, bool)>,
    members: Vec<usize>,
    keys: Vec<String>,
    bytes: usize,
}

impl Pack {
    /// Adds publication `index` if it fits; false (and nothing added) if it does not.
    fn add(
        &mut self,
        store: &DynamoOutbound,
        index: usize,
        publication: &Publication,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let Publication {
            event,
            deliveries,
            idempotency_key: key,
        } = publication;
        // Two writes of one item cannot share a transaction.
        if key.as_ref().is_some_and(|key| self.keys.contains(key)) {
            return Ok(false);
        }
        if self.writes.items.len() + items_of(publication) > MAX_TRANSACTION_ITEMS - 1 {
            return Ok(false);
        }
        let event_item = event_item(event)?;
        let delivery_items = deliveries
            .iter()
            .map(delivery_item)
            .collect::<StoreResult<Vec<_>>>()?;
        let bytes = size_of(&event_item) + delivery_items.iter().map(size_of).sum::<usize>();
        if !self.members.is_empty() && self.bytes + bytes > MAX_PACKED_BYTES {
            return Ok(false);
        }
        if let Some(key) = key {
            self.writes
                .idempotency_record(store, key, event, deliveries, now)?;
            self.owners.push((index, true));
            self.keys.push(key.clone());
        }
        self.writes.event(store, event_item, event)?;
        self.owners.push((index, false));
        for (delivery, item) in deliveries.iter().zip(delivery_items) {
            self.writes.delivery(store, item, delivery)?;
            self.owners.push((index, false));
        }
        self.members.push(index);
        self.bytes += bytes;
        Ok(true)
    }
}

/// Roughly how large an item is: its names and string or number values.
fn size_of(item: &Attrs) -> usize {
    item.iter()
        .map(|(name, value)| name.len() + value.as_s().or(value.as_n()).map_or(16, String::len))
        .sum()
}
