//! Subscriptions, events and deliveries on one DynamoDB table (`NEXUS_OUTBOUND_TABLE`).
//!
//! Items, by `pk` / `sk`:
//! - `SUBS` / `SUB#{id}`: a subscription. One partition, so listing them (fan-out does on
//!   every publish) is one strongly consistent Query, oldest first (ids are ULIDs);
//! - `EVT#{id}` / `EVT`: an event; `DLV#{id}` / `DLV`: a delivery with its attempt log;
//! - `IDEMP#{key}` / `IDEMP`: what the first publish with an idempotency key stored,
//!   until `expires_at` (the table's TTL attribute);
//! - `RATE#{sub}` / `RATE`: a rate-limited subscription's GCRA theoretical arrival time;
//! - `COUNTERS#{n}` / `COUNTERS`: the statistics (`outbound_counts.rs`).
//!
//! Deliveries are listed newest first through four KEYS_ONLY indexes sorted by `dlv_id`
//! (a ULID): all of them, by subscription, by status, by both (`outbound_list.rs`). Only
//! the base item carries the attempt log, so recording an attempt rewrites no index.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue as Av, Put, TransactWriteItem};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};

use super::outbound_attrs::{
    delivery_item, delivery_key, event_item, event_key, from_doc, idempotency_key, rate_key,
    string, subscription_from, subscription_item, subscription_key, text_time, time, Attrs,
    DLV_STATUS, SUBSCRIPTIONS, SUCCESS_LATENCY,
};
use super::outbound_counts::{counter_key, sum, Deltas, Tally, COUNTER_SHARDS};
use crate::domain::outbound::{
    rate_slot, Delivery, Event, EventId, OutboundDeliveryId, Subscription, SubscriptionId,
};
use crate::ports::outbound::{
    DeliveryCounts, DeliveryPage, DeliveryQuery, OutboundStore, PublishOutcome,
};
use crate::ports::store::StoreResult;
use crate::ports::StoreError;

/// DynamoDB's limit on the items of one transaction.
const MAX_TRANSACTION_ITEMS: usize = 100;
/// Tries of an optimistic write (a transaction, a compare-and-set) that lost a race.
pub(super) const MAX_TRIES: u32 = 8;

/// The DynamoDB outbound store.
pub struct DynamoOutbound {
    pub(super) client: Client,
    pub(super) table: String,
    idempotency_ttl: Duration,
}

/// Why a transaction did not apply.
enum TransactError {
    /// The condition of the item at this index failed.
    Condition(usize),
    Store(StoreError),
}

impl DynamoOutbound {
    /// `idempotency_ttl`: how long an idempotency key is remembered.
    pub fn new(client: Client, table: String, idempotency_ttl: Duration) -> Self {
        Self {
            client,
            table,
            idempotency_ttl,
        }
    }

    /// A consistent read of one item, optionally projected.
    async fn get(&self, key: Attrs, projection: Option<&str>) -> StoreResult<Option<Attrs>> {
        self.client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .set_projection_expression(projection.map(str::to_owned))
            .send()
            .await
            .map(|output| output.item)
            .map_err(StoreError::unavailable)
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
            event_id: EventId::parse(string(&record, "event_id")?)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?,
            delivery_ids,
        })
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

fn is_conditional_failure<E: aws_sdk_dynamodb::error::ProvideErrorMetadata, R>(
    error: &SdkError<E, R>,
) -> bool {
    matches!(
        error.as_service_error().and_then(|e| e.code()),
        Some("ConditionalCheckFailedException" | "TransactionConflictException")
    )
}

#[async_trait]
impl OutboundStore for DynamoOutbound {
    async fn put_subscription(&self, subscription: &Subscription) -> StoreResult<()> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(subscription_item(subscription)))
            .send()
            .await
            .map_err(StoreError::unavailable)?;
        Ok(())
    }

    async fn get_subscription(&self, id: &SubscriptionId) -> StoreResult<Option<Subscription>> {
        self.get(subscription_key(id), None)
            .await?
            .as_ref()
            .map(subscription_from)
            .transpose()
    }

    async fn list_subscriptions(&self) -> StoreResult<Vec<Subscription>> {
        let mut subscriptions = Vec::new();
        let mut start = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", Av::S(SUBSCRIPTIONS.to_owned()))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(StoreError::unavailable)?;
            for item in output.items() {
                subscriptions.push(subscription_from(item)?);
            }
            start = output.last_evaluated_key;
            if start.is_none() {
                return Ok(subscriptions);
            }
        }
    }

    async fn delete_subscription(&self, id: &SubscriptionId) -> StoreResult<bool> {
        let deleted = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(subscription_key(id)))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await
            .map_err(StoreError::unavailable)?;
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(rate_key(id)))
            .send()
            .await
            .map_err(StoreError::unavailable)?;
        Ok(deleted.attributes.is_some_and(|a| !a.is_empty()))
    }

    /// One transaction when it fits (idempotency record, event, counters and up to 97
    /// deliveries), else chunks of 100 items, the first carrying the idempotency record.
    async fn publish(
        &self,
        event: &Event,
        deliveries: &[Delivery],
        idempotency_key: Option<&str>,
        now: DateTime<Utc>,
    ) -> StoreResult<PublishOutcome> {
        let mut rest = deliveries;
        let mut first = true;
        loop {
            let mut items = Vec::new();
            let mut deltas = Deltas::default();
            if first {
                if let Some(key) = idempotency_key {
                    items.push(self.idempotency_put(key, event, deliveries, now)?);
                }
                items.push(self.put(event_item(event)?, "attribute_not_exists(pk)", None)?);
                deltas.event(&event.event_type);
            }
            // One item is left for the counters.
            let room = MAX_TRANSACTION_ITEMS - items.len() - 1;
            let (chunk, tail) = rest.split_at(room.min(rest.len()));
            for delivery in chunk {
                deltas.transition(None, Tally::of(delivery));
                items.push(self.put(delivery_item(delivery)?, "attribute_not_exists(pk)", None)?);
            }
            if !deltas.is_empty() {
                let update = deltas.update(&self.table)?;
                items.push(TransactWriteItem::builder().update(update).build());
            }
            match self.transact(items).await {
                Ok(()) => {}
                Err(TransactError::Condition(0)) if first && idempotency_key.is_some() => {
                    return self
                        .first_publish(idempotency_key.unwrap_or_default())
                        .await;
                }
                Err(TransactError::Condition(index)) => {
                    return Err(StoreError::Corrupt(format!(
                        "publish item {index} already exists"
                    )))
                }
                Err(TransactError::Store(error)) => return Err(error),
            }
            rest = tail;
            first = false;
            if rest.is_empty() {
                return Ok(PublishOutcome::Stored);
            }
        }
    }

    async fn get_event(&self, id: &EventId) -> StoreResult<Option<Event>> {
        self.get(event_key(id), None)
            .await?
            .as_ref()
            .map(from_doc)
            .transpose()
    }

    async fn get_delivery(&self, id: &OutboundDeliveryId) -> StoreResult<Option<Delivery>> {
        self.get(delivery_key(id), None)
            .await?
            .as_ref()
            .map(from_doc)
            .transpose()
    }

    /// A compare-and-set on the stored status: the counters move from the status this
    /// write replaces, exactly once, however many writers race.
    async fn save_delivery(&self, delivery: &Delivery) -> StoreResult<()> {
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
                    Err(error) if is_conditional_failure(&error) => true,
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

    async fn list_deliveries(&self, query: &DeliveryQuery) -> StoreResult<DeliveryPage> {
        self.list(query).await
    }

    async fn delivery_counts(&self) -> StoreResult<DeliveryCounts> {
        let keys = (0..COUNTER_SHARDS).map(counter_key).collect();
        Ok(sum(&self.batch_get(keys).await?))
    }

    /// GCRA on the `RATE#` item: a free slot is taken with a compare-and-set on the stored
    /// arrival time; a busy one is not reserved, only reported (the caller asks again when
    /// it is due).
    async fn reserve_rate_slot(
        &self,
        id: &SubscriptionId,
        per_minute: u32,
        now: DateTime<Utc>,
    ) -> StoreResult<Duration> {
        for attempt in 0..MAX_TRIES {
            let stored = self.get(rate_key(id), Some("tat")).await?;
            let stored = stored
                .as_ref()
                .map(|attrs| string(attrs, "tat"))
                .transpose()?;
            let (wait, tat) = rate_slot(stored.map(time).transpose()?, now, per_minute);
            if !wait.is_zero() {
                return Ok(wait);
            }
            let mut item = rate_key(id);
            item.insert("tat".to_owned(), Av::S(text_time(tat)));
            let request = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item));
            let request = match stored {
                Some(old) => request
                    .condition_expression("tat = :old")
                    .expression_attribute_values(":old", Av::S(old.to_owned())),
                None => request.condition_expression("attribute_not_exists(pk)"),
            };
            match request.send().await {
                Ok(_) => return Ok(Duration::ZERO),
                Err(error) if is_conditional_failure(&error) => pause(attempt).await,
                Err(error) => return Err(StoreError::unavailable(error)),
            }
        }
        // Others keep taking the slots: this one waits for the next.
        Ok(Duration::from_secs(60) / per_minute.max(1))
    }
}
