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
//!
//! Publishing and saving deliveries are transactions with the counters
//! (`outbound_writes.rs`); attribute mappings are in `outbound_attrs.rs`.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue as Av;
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};

use super::outbound_attrs::{
    delivery_key, event_key, from_doc, rate_key, string, subscription_from, subscription_item,
    subscription_key, text_time, time, Attrs, DLV_CLAIMED_UNTIL, DLV_VERSION, SUBSCRIPTIONS,
};
use super::outbound_counts::{counter_key, sum, COUNTER_SHARDS};
use super::outbound_writes::{is_lost_race, pause, MAX_TRIES};
use crate::domain::outbound::{
    rate_slot, Delivery, Event, EventId, OutboundDeliveryId, Subscription, SubscriptionId,
};
use crate::ports::outbound::{
    DeliveryCounts, DeliveryPage, DeliveryQuery, OutboundStore, Publication, PublishOutcome,
    RateLane,
};
use crate::ports::store::StoreResult;
use crate::ports::StoreError;

/// The DynamoDB outbound store.
pub struct DynamoOutbound {
    pub(super) client: Client,
    pub(super) table: String,
    pub(super) idempotency_ttl: Duration,
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
    pub(super) async fn get(
        &self,
        key: Attrs,
        projection: Option<&str>,
    ) -> StoreResult<Option<Attrs>> {
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

    async fn get_subscription(
        &self,
        id: &SubscriptionId,
    ) -> StoreResult<Option<Arc<Subscription>>> {
        let item = self.get(subscription_key(id), None).await?;
        Ok(item
            .as_ref()
            .map(subscription_from)
            .transpose()?
            .map(Arc::new))
    }

    async fn list_subscriptions(&self) -> StoreResult<Arc<[Subscription]>> {
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
                return Ok(subscriptions.into());
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
        for lane in [RateLane::Wake, RateLane::Send] {
            self.client
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(rate_key(id, lane)))
                .send()
                .await
                .map_err(StoreError::unavailable)?;
        }
        Ok(deleted.attributes.is_some_and(|a| !a.is_empty()))
    }

    async fn publish(
        &self,
        event: &Event,
        deliveries: &[Delivery],
        idempotency_key: Option<&str>,
        now: DateTime<Utc>,
    ) -> StoreResult<PublishOutcome> {
        self.publish_transactions(event, deliveries, idempotency_key, now)
            .await
    }

    async fn publish_all(
        &self,
        items: &[Publication],
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<PublishOutcome>> {
        self.publish_packed(items, now).await
    }

    async fn get_event(&self, id: &EventId) -> StoreResult<Option<Arc<Event>>> {
        let item = self.get(event_key(id), None).await?;
        Ok(item.as_ref().map(from_doc).transpose()?.map(Arc::new))
    }

    async fn get_delivery(&self, id: &OutboundDeliveryId) -> StoreResult<Option<Delivery>> {
        self.get(delivery_key(id), None)
            .await?
            .as_ref()
            .map(from_doc)
            .transpose()
    }

    async fn save_delivery(&self, delivery: &Delivery) -> StoreResult<()> {
        self.save_counted(delivery).await
    }

    /// One conditional update: the version as read, and no claim live at `now`. A delivery
    /// stored before versions were kept has none; it is claimed on the lease alone.
    async fn claim_delivery(
        &self,
        delivery: &Delivery,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(delivery_key(&delivery.id)))
            .update_expression("SET #until = :until")
            .condition_expression(
                "attribute_exists(pk) \
                 AND (#version = :version OR attribute_not_exists(#version)) \
                 AND (attribute_not_exists(#until) OR #until < :now)",
            )
            .expression_attribute_names("#until", DLV_CLAIMED_UNTIL)
            .expression_attribute_names("#version", DLV_VERSION)
            .expression_attribute_values(":until", Av::N(until.timestamp_millis().to_string()))
            .expression_attribute_values(":now", Av::N(now.timestamp_millis().to_string()))
            .expression_attribute_values(":version", Av::S(text_time(delivery.updated_at)))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(error) if is_lost_race(&error) => Ok(false),
            Err(error) => Err(StoreError::unavailable(error)),
        }
    }

    async fn list_deliveries(&self, query: &DeliveryQuery) -> StoreResult<DeliveryPage> {
        self.list(query).await
    }

    async fn delivery_counts(&self) -> StoreResult<DeliveryCounts> {
        let keys = (0..COUNTER_SHARDS).map(counter_key).collect();
        Ok(sum(&self.batch_get(keys).await?))
    }

    /// GCRA on the `RATE#` item: the next free slot is taken with a compare-and-set on the
    /// stored arrival time.
    async fn reserve_rate_slot(
        &self,
        id: &SubscriptionId,
        lane: RateLane,
        per_minute: u32,
        now: DateTime<Utc>,
    ) -> StoreResult<Duration> {
        for attempt in 0..MAX_TRIES {
            let stored = self.get(rate_key(id, lane), Some("tat")).await?;
            let stored = stored
                .as_ref()
                .map(|attrs| string(attrs, "tat"))
                .transpose()?;
            let (wait, tat) = rate_slot(stored.map(time).transpose()?, now, per_minute);
            let mut item = rate_key(id, lane);
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
                Ok(_) => return Ok(wait),
                Err(error) if is_lost_race(&error) => pause(attempt).await,
                Err(error) => return Err(StoreError::unavailable(error)),
            }
        }
        // Others kept taking the slots under it: no slot is held, so the step fails and the
        // queue brings the message back later.
        Err(StoreError::unavailable(std::io::Error::other(
            "the rate-limit slot kept changing under concurrent writers",
        )))
    }
}
