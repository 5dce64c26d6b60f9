//! The inbox on DynamoDB (table layout: README.md "Storage" and template.yaml).
//!
//! - items: `pk` = agent id, `sk` = row key; while pending they carry `pending` = "1" and
//!   `pending_agent` = agent id, the keys of two sparse indexes (`pending-by-time`,
//!   `pending-by-agent`), so listing pending work reads only pending items;
//! - dedupe markers: `pk` = agent id, `sk` = `dedupe#{source}#{delivery id}`, written in the
//!   same transaction as the item under `attribute_not_exists`;
//! - `expires_at` (epoch seconds) is the TTL attribute of processed items and markers.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{AttributeValue as Av, Put, TransactWriteItem};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, SecondsFormat, Utc};
use futures::{StreamExt, TryStreamExt};

use crate::domain::ids::{AgentId, Source};
use crate::domain::item::{DeliveryId, InboxItem, ItemId, RowKey};
use crate::ports::store::StoreResult;
use crate::ports::{InboxStore, InsertOutcome, MarkOutcome, PendingPage, PendingQuery, StoreError};

pub const INDEX_BY_TIME: &str = "pending-by-time";
pub const INDEX_BY_AGENT: &str = "pending-by-agent";
const PENDING: &str = "1";
/// Concurrent UpdateItem calls per mark-processed request.
const MARK_CONCURRENCY: usize = 16;

type Attrs = HashMap<String, Av>;

pub struct DynamoStore {
    client: Client,
    table: String,
}

impl DynamoStore {
    pub fn new(client: Client, table: String) -> Self {
        Self { client, table }
    }

    fn item_key(id: &ItemId) -> Attrs {
        HashMap::from([
            ("pk".to_owned(), Av::S(id.agent.to_string())),
            ("sk".to_owned(), Av::S(id.row_key.as_str().to_owned())),
        ])
    }

    fn marker_key(item: &InboxItem, delivery: &DeliveryId) -> Attrs {
        HashMap::from([
            ("pk".to_owned(), Av::S(item.id.agent.to_string())),
            (
                "sk".to_owned(),
                Av::S(format!("dedupe#{}#{}", item.source, delivery.as_str())),
            ),
        ])
    }

    async fn read_marker(&self, key: Attrs) -> StoreResult<InsertOutcome> {
        let marker = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(StoreError::unavailable)?
            .item
            .ok_or_else(|| StoreError::Corrupt("dedupe marker vanished during insert".into()))?;
        Ok(InsertOutcome::Duplicate {
            id: string(&marker, "item_id")?
                .parse()
                .map_err(|e| StoreError::Corrupt(format!("dedupe marker: {e}")))?,
            received_at: time(string(&marker, "received_at")?)?,
        })
    }

    async fn mark_one(
        &self,
        id: &ItemId,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<MarkOutcome> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::item_key(id)))
            // `processed` is a DynamoDB reserved word, hence the placeholder.
            .update_expression(
                "SET #processed = :yes, processed_at = :now, expires_at = :exp \
                 REMOVE pending, pending_agent",
            )
            .condition_expression("attribute_exists(pk) AND #processed = :no")
            .expression_attribute_names("#processed", "processed")
            .expression_attribute_values(":yes", Av::Bool(true))
            .expression_attribute_values(":no", Av::Bool(false))
            .expression_attribute_values(":now", Av::S(text_time(now)))
            .expression_attribute_values(":exp", Av::N(expires_at.timestamp().to_string()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(MarkOutcome::Processed),
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                self.processed_state(id, now).await
            }
            Err(error) => Err(StoreError::unavailable(error)),
        }
    }

    /// Why a mark did not apply: no such item, or already processed (and maybe expired, as
    /// TTL deletion runs late).
    async fn processed_state(&self, id: &ItemId, now: DateTime<Utc>) -> StoreResult<MarkOutcome> {
        let item = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(Self::item_key(id)))
            .consistent_read(true)
            .projection_expression("expires_at")
            .send()
            .await
            .map_err(StoreError::unavailable)?
            .item;
        Ok(match item {
            None => MarkOutcome::Unknown,
            Some(attrs) => match attrs.get("expires_at").and_then(|v| v.as_n().ok()) {
                Some(expiry) if expiry.parse::<i64>().is_ok_and(|e| e <= now.timestamp()) => {
                    MarkOutcome::Unknown
                }
                _ => MarkOutcome::AlreadyProcessed,
            },
        })
    }
}

fn text_time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn time(value: &str) -> StoreResult<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt(format!("bad timestamp {value:?}: {e}")))
}

fn string<'a>(attrs: &'a Attrs, name: &str) -> StoreResult<&'a str> {
    attrs
        .get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
        .ok_or_else(|| StoreError::Corrupt(format!("attribute {name} missing or not a string")))
}

fn to_attrs(item: &InboxItem) -> Attrs {
    let mut attrs = DynamoStore::item_key(&item.id);
    let headers = item
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), Av::S(v.clone())))
        .collect();
    attrs.extend([
        ("source".to_owned(), Av::S(item.source.to_string())),
        ("received_at".to_owned(), Av::S(text_time(item.received_at))),
        ("headers".to_owned(), Av::M(headers)),
        (
            "payload".to_owned(),
            Av::B(Blob::new(item.payload.to_vec())),
        ),
        ("processed".to_owned(), Av::Bool(false)),
        ("pending".to_owned(), Av::S(PENDING.to_owned())),
        ("pending_agent".to_owned(), Av::S(item.id.agent.to_string())),
    ]);
    if let Some(content_type) = &item.content_type {
        attrs.insert("content_type".to_owned(), Av::S(content_type.clone()));
    }
    if let Some(delivery) = &item.delivery_id {
        attrs.insert(
            "delivery_id".to_owned(),
            Av::S(delivery.as_str().to_owned()),
        );
    }
    attrs
}

fn from_attrs(attrs: &Attrs) -> StoreResult<InboxItem> {
    let corrupt = |e: &dyn std::fmt::Display| StoreError::Corrupt(e.to_string());
    let headers = match attrs.get("headers") {
        Some(Av::M(map)) => map
            .iter()
            .map(|(k, v)| {
                Ok((
                    k.clone(),
                    v.as_s().map_err(|_| corrupt(&"header value"))?.clone(),
                ))
            })
            .collect::<StoreResult<_>>()?,
        _ => Default::default(),
    };
    let payload = match attrs.get("payload") {
        Some(Av::B(blob)) => bytes::Bytes::copy_from_slice(blob.as_ref()),
        _ => return Err(corrupt(&"payload missing or not binary")),
    };
    Ok(InboxItem {
        id: ItemId {
            agent: AgentId::parse(string(attrs, "pk")?).map_err(|e| corrupt(&e))?,
            row_key: RowKey::parse(string(attrs, "sk")?).map_err(|e| corrupt(&e))?,
        },
        source: Source::parse(string(attrs, "source")?).map_err(|e| corrupt(&e))?,
        received_at: time(string(attrs, "received_at")?)?,
        content_type: attrs
            .get("content_type")
            .and_then(|v| v.as_s().ok())
            .cloned(),
        headers,
        payload,
        delivery_id: match attrs.get("delivery_id").and_then(|v| v.as_s().ok()) {
            Some(d) => Some(DeliveryId::parse("delivery id", d).map_err(|e| corrupt(&e))?),
            None => None,
        },
        processed: matches!(attrs.get("processed"), Some(Av::Bool(true))),
    })
}

#[async_trait]
impl InboxStore for DynamoStore {
    async fn insert(
        &self,
        item: InboxItem,
        now: DateTime<Utc>,
        dedupe_until: DateTime<Utc>,
    ) -> StoreResult<InsertOutcome> {
        let item = &item;
        let attrs = to_attrs(item);
        let Some(delivery) = &item.delivery_id else {
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(attrs))
                .condition_expression("attribute_not_exists(pk)")
                .send()
                .await
                .map_err(StoreError::unavailable)?;
            return Ok(InsertOutcome::Stored);
        };

        let put_item = Put::builder()
            .table_name(&self.table)
            .set_item(Some(attrs))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(StoreError::unavailable)?;
        let marker_key = Self::marker_key(item, delivery);
        let mut marker = marker_key.clone();
        marker.extend([
            ("item_id".to_owned(), Av::S(item.id.to_string())),
            ("received_at".to_owned(), Av::S(text_time(item.received_at))),
            (
                "expires_at".to_owned(),
                Av::N(dedupe_until.timestamp().to_string()),
            ),
        ]);
        let put_marker = Put::builder()
            .table_name(&self.table)
            .set_item(Some(marker))
            // An expired marker may linger until TTL deletes it: it no longer counts.
            .condition_expression("attribute_not_exists(pk) OR expires_at <= :now")
            .expression_attribute_values(":now", Av::N(now.timestamp().to_string()))
            .build()
            .map_err(StoreError::unavailable)?;
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(put_marker).build())
            .transact_items(TransactWriteItem::builder().put(put_item).build())
            .send()
            .await;
        match result {
            Ok(_) => Ok(InsertOutcome::Stored),
            Err(error) => {
                let marker_exists = error.as_service_error().is_some_and(|e| match e {
                    aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(c) => c
                        .cancellation_reasons()
                        .first()
                        .and_then(|r| r.code())
                        == Some("ConditionalCheckFailed"),
                    _ => false,
                });
                if marker_exists {
                    self.read_marker(marker_key).await
                } else {
                    Err(StoreError::unavailable(error))
                }
            }
        }
    }

    async fn pending(&self, query: &PendingQuery) -> StoreResult<PendingPage> {
        let (index, key_name, key_value) = match &query.agent {
            Some(agent) => (INDEX_BY_AGENT, "pending_agent", agent.to_string()),
            None => (INDEX_BY_TIME, "pending", PENDING.to_owned()),
        };
        // The start key names a position in the index; the item it names need not still be
        // pending (or exist) for the query to continue after it.
        let mut start: Option<Attrs> = query.after.as_ref().map(|after| {
            let mut key = Self::item_key(after);
            key.insert(key_name.to_owned(), Av::S(key_value.clone()));
            key
        });
        let want = query.limit + 1;
        let mut items = Vec::with_capacity(want);
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(index)
                .key_condition_expression("#k = :v")
                .expression_attribute_names("#k", key_name)
                .expression_attribute_values(":v", Av::S(key_value.clone()))
                .limit(i32::try_from(want - items.len()).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(StoreError::unavailable)?;
            for attrs in output.items() {
                items.push(from_attrs(attrs)?);
            }
            start = output.last_evaluated_key;
            if start.is_none() || items.len() >= want {
                break;
            }
        }
        let more = items.len() > query.limit;
        items.truncate(query.limit);
        Ok(PendingPage { items, more })
    }

    async fn mark_processed(
        &self,
        ids: &[ItemId],
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<Vec<MarkOutcome>> {
        let updates: Vec<_> = ids
            .iter()
            .map(|id| self.mark_one(id, now, expires_at))
            .collect();
        futures::stream::iter(updates)
            .buffered(MARK_CONCURRENCY)
            .try_collect()
            .await
    }
}
