//! Reading many outbound items: delivery pages through the delivery indexes, and batched
//! reads of the items an index names.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue as Av, KeysAndAttributes};
use futures::future::try_join_all;

use super::outbound::DynamoOutbound;
use super::outbound_attrs::{
    from_doc, key, string, Attrs, ALL_DELIVERIES, DLV_ID, DLV_LIST, DLV_STATUS, DLV_SUB,
    DLV_SUB_STATUS,
};
use super::outbound_writes::{contended, pause, MAX_TRIES};
use crate::domain::outbound::Delivery;
use crate::ports::outbound::{DeliveryPage, DeliveryQuery};
use crate::ports::store::StoreResult;
use crate::ports::StoreError;

/// Every delivery, newest first.
pub const INDEX_NEWEST: &str = "deliveries-newest";
/// A subscription's deliveries, newest first.
pub const INDEX_BY_SUBSCRIPTION: &str = "deliveries-by-subscription";
/// Deliveries in one status, newest first.
pub const INDEX_BY_STATUS: &str = "deliveries-by-status";
/// A subscription's deliveries in one status, newest first.
pub const INDEX_BY_SUBSCRIPTION_STATUS: &str = "deliveries-by-subscription-status";

/// DynamoDB's limit on the keys of one BatchGetItem.
const MAX_BATCH_GET: usize = 100;

impl DynamoOutbound {
    /// A page of deliveries: the keys from the index that fits the filters (a Query, newest
    /// first, after the cursor), then the items themselves.
    pub(super) async fn list(&self, query: &DeliveryQuery) -> StoreResult<DeliveryPage> {
        let (index, hash, value) = match (&query.subscription_id, query.status) {
            (None, None) => (INDEX_NEWEST, DLV_LIST, ALL_DELIVERIES.to_owned()),
            (Some(sub), None) => (INDEX_BY_SUBSCRIPTION, DLV_SUB, sub.to_string()),
            (None, Some(status)) => (INDEX_BY_STATUS, DLV_STATUS, status.as_str().to_owned()),
            (Some(sub), Some(status)) => (
                INDEX_BY_SUBSCRIPTION_STATUS,
                DLV_SUB_STATUS,
                format!("{sub}#{status}"),
            ),
        };
        let mut condition = "#h = :h".to_owned();
        let mut names = HashMap::from([("#h".to_owned(), hash.to_owned())]);
        let mut values = HashMap::from([(":h".to_owned(), Av::S(value))]);
        if let Some(after) = &query.after {
            condition.push_str(" AND #id < :after");
            names.insert("#id".to_owned(), DLV_ID.to_owned());
            values.insert(":after".to_owned(), Av::S(after.to_string()));
        }
        let want = query.limit.saturating_add(1);
        let mut keys = Vec::with_capacity(want);
        let mut start = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(index)
                .key_condition_expression(&condition)
                .set_expression_attribute_names(Some(names.clone()))
                .set_expression_attribute_values(Some(values.clone()))
                .scan_index_forward(false)
                .limit(i32::try_from(want - keys.len()).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(StoreError::unavailable)?;
            for item in output.items() {
                keys.push(key(string(item, "pk")?.to_owned(), string(item, "sk")?));
            }
            start = output.last_evaluated_key;
            if start.is_none() || keys.len() >= want {
                break;
            }
        }
        let more = keys.len() > query.limit;
        keys.truncate(query.limit);

        let mut items: HashMap<String, Attrs> = self
            .batch_get(keys.clone())
            .await?
            .into_iter()
            .filter_map(|item| Some((string(&item, "pk").ok()?.to_owned(), item)))
            .collect();
        let mut deliveries = Vec::with_capacity(keys.len());
        for key in &keys {
            let Some(item) = items.remove(string(key, "pk")?) else {
                continue;
            };
            let delivery: Delivery = from_doc(&item)?;
            // Indexes lag the table a little: a delivery that has just changed status
            // may still be listed under its old one.
            if query.status.is_none_or(|status| status == delivery.status) {
                deliveries.push(delivery);
            }
        }
        Ok(DeliveryPage { deliveries, more })
    }

    /// Strongly consistent reads of the items with `keys`, in no particular order; missing
    /// items are left out.
    pub(super) async fn batch_get(&self, keys: Vec<Attrs>) -> StoreResult<Vec<Attrs>> {
        let chunks = keys
            .chunks(MAX_BATCH_GET)
            .map(|chunk| self.batch_get_chunk(chunk.to_vec()));
        Ok(try_join_all(chunks).await?.into_iter().flatten().collect())
    }

    async fn batch_get_chunk(&self, mut keys: Vec<Attrs>) -> StoreResult<Vec<Attrs>> {
        let mut found = Vec::with_capacity(keys.len());
        for attempt in 0..MAX_TRIES {
            if keys.is_empty() {
                return Ok(found);
            }
            let request = KeysAndAttributes::builder()
                .set_keys(Some(std::mem::take(&mut keys)))
                .consistent_read(true)
                .build()
                .map_err(StoreError::unavailable)?;
            let output = self
                .client
                .batch_get_item()
                .request_items(&self.table, request)
                .send()
                .await
                .map_err(StoreError::unavailable)?;
            if let Some(mut responses) = output.responses {
                found.extend(responses.remove(&self.table).unwrap_or_default());
            }
            // Keys DynamoDB did not get to (throttling, the 16 MB limit) are asked again.
            keys = output
                .unprocessed_keys
                .and_then(|mut unprocessed| unprocessed.remove(&self.table))
                .map(|rest| rest.keys)
                .unwrap_or_default();
            if !keys.is_empty() {
                pause(attempt).await;
            }
        }
        if keys.is_empty() {
            Ok(found)
        } else {
            Err(contended("a batch read"))
        }
    }
}
