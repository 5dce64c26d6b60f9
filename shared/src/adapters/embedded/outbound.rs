//! Subscriptions, published events and their deliveries on SQLite (`outbound.db`, which
//! also holds the local delivery queue: `queue.rs`).
//!
//! Writes go through the group-commit writer (`writer.rs`): a publish stores its event,
//! every delivery and its idempotency key in one job, so they commit together or not at
//! all, and a rate slot is checked and taken in one job, so two callers never take it both.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::params;

use super::db::{db_error, text_time, Database};
use super::outbound_cache::{OutboundCache, Subscriptions};
use super::outbound_schema::{
    subscription_doc, subscription_from_doc, DeliveryRow, EventRow, MIGRATIONS,
};
use super::outbound_sql::{
    delivery_counts, list_deliveries, publish, query_docs, reserve, upsert_delivery,
};
use crate::domain::outbound::{
    Delivery, Event, EventId, OutboundDeliveryId, Subscription, SubscriptionId,
};
use crate::ports::outbound::{
    DeliveryCounts, DeliveryPage, DeliveryQuery, OutboundStore, Publication, PublishOutcome,
    RateLane,
};
use crate::ports::store::StoreResult;

/// The SQLite outbound store. Cheap to share behind an `Arc`.
pub struct SqliteOutbound {
    /// Shared with the delivery queue kept in the same database (`queue.rs`).
    db: Arc<Database>,
    cache: OutboundCache,
}

impl SqliteOutbound {
    /// Opens (creating and migrating if needed) the database at `path`.
    pub fn open(path: impl AsRef<Path>) -> StoreResult<Self> {
        Ok(Self {
            db: Arc::new(Database::open(
                path.as_ref(),
                &MIGRATIONS,
                "sqlite-outbound",
            )?),
            cache: OutboundCache::default(),
        })
    }

    /// Keeps what a publish stored: its deliveries are read back moments later.
    fn remember(&self, event: &Event, deliveries: &[Delivery]) {
        let shared = Arc::new(event.clone());
        self.cache.events.insert(event.id.clone(), shared);
        for delivery in deliveries {
            self.cache
                .deliveries
                .insert(delivery.id.clone(), delivery.clone());
        }
    }

    /// Every subscription, from memory once loaded.
    async fn subscriptions(&self) -> StoreResult<Arc<Subscriptions>> {
        match self.cache.subscriptions() {
            Ok(subscriptions) => Ok(subscriptions),
            Err(generation) => {
                let list = self
                    .db
                    .read(|conn| {
                        let mut statement = conn
                            .prepare_cached("SELECT doc FROM subscriptions ORDER BY created_at, id")
                            .map_err(db_error)?;
                        let docs = statement
                            .query_map([], |row| row.get::<_, String>(0))
                            .map_err(db_error)?;
                        docs.map(|doc| subscription_from_doc(&doc.map_err(db_error)?))
                            .collect()
                    })
                    .await?;
                Ok(self
                    .cache
                    .fill_subscriptions(generation, Subscriptions::new(list)))
            }
        }
    }

    pub(super) fn database(&self) -> Arc<Database> {
        self.db.clone()
    }

    /// Forgets idempotency keys stored before `before`; returns how many went. A publish
    /// repeated with a forgotten key is stored again.
    pub async fn purge_idempotency_keys(&self, before: DateTime<Utc>) -> StoreResult<usize> {
        let before = text_time(before);
        self.db
            .write(move |tx| {
                tx.execute(
                    "DELETE FROM idempotency_keys WHERE created_at < ?1",
                    [&before],
                )
                .map_err(db_error)
            })
            .await
    }
}

#[async_trait]
impl OutboundStore for SqliteOutbound {
    async fn put_subscription(&self, subscription: &Subscription) -> StoreResult<()> {
        let id = subscription.id.as_str().to_owned();
        let created_at = text_time(subscription.created_at);
        let doc = subscription_doc(subscription)?;
        let written = self
            .db
            .write(move |tx| {
                tx.prepare_cached(
                    "INSERT INTO subscriptions (id, created_at, doc) VALUES (?1, ?2, ?3)
                     ON CONFLICT (id) DO UPDATE SET created_at = excluded.created_at,
                         doc = excluded.doc",
                )
                .map_err(db_error)?
                .execute(params![id, created_at, doc])
                .map_err(db_error)?;
                Ok(())
            })
            .await;
        // Also after a failure: the commit's outcome may be unknown.
        self.cache.subscriptions_changed();
        written
    }

    async fn get_subscription(
        &self,
        id: &SubscriptionId,
    ) -> StoreResult<Option<Arc<Subscription>>> {
        Ok(self.subscriptions().await?.get(id))
    }

    async fn list_subscriptions(&self) -> StoreResult<Arc<[Subscription]>> {
        Ok(self.subscriptions().await?.list.clone())
    }

    async fn delete_subscription(&self, id: &SubscriptionId) -> StoreResult<bool> {
        let id = id.as_str().to_owned();
        let deleted = self
            .db
            .write(move |tx| {
                tx.execute("DELETE FROM rate_slots WHERE subscription_id = ?1", [&id])
                    .and_then(|_| {
                        tx.execute("DELETE FROM send_slots WHERE subscription_id = ?1", [&id])
                    })
                    .and_then(|_| tx.execute("DELETE FROM subscriptions WHERE id = ?1", [&id]))
                    .map(|deleted| deleted > 0)
                    .map_err(db_error)
            })
            .await;
        self.cache.subscriptions_changed();
        deleted
    }

    async fn publish(
        &self,
        event: &Event,
        deliveries: &[Delivery],
        idempotency_key: Option<&str>,
        now: DateTime<Utc>,
    ) -> StoreResult<PublishOutcome> {
        let publication = Publication {
            event: event.clone(),
            deliveries: deliveries.to_vec(),
            idempotency_key: idempotency_key.map(str::to_owned),
        };
        let mut outcomes = self
            .publish_all(std::slice::from_ref(&publication), now)
            .await?;
        Ok(outcomes.remove(0))
    }

    /// One writer job for the whole batch: one commit, one fsync.
    async fn publish_all(
        &self,
        items: &[Publication],
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<PublishOutcome>> {
        // Documents are serialized here, so the writer thread only writes.
        let rows = items
            .iter()
            .map(|item| {
                let deliveries = item
                    .deliveries
                    .iter()
                    .map(DeliveryRow::new)
                    .collect::<StoreResult<Vec<_>>>()?;
                Ok((
                    EventRow::new(&item.event)?,
                    deliveries,
                    item.idempotency_key.clone(),
                ))
            })
            .collect::<StoreResult<Vec<_>>>()?;
        let now = text_time(now);
        let outcomes = self
            .db
            .write(move |tx| {
                rows.iter()
                    .map(|(event, deliveries, key)| {
                        publish(tx, event, deliveries, key.as_deref(), &now)
                    })
                    .collect::<StoreResult<Vec<_>>>()
            })
            .await?;
        for (item, outcome) in items.iter().zip(&outcomes) {
            if *outcome == PublishOutcome::Stored {
                self.remember(&item.event, &item.deliveries);
            }
        }
        Ok(outcomes)
    }

    async fn get_event(&self, id: &EventId) -> StoreResult<Option<Arc<Event>>> {
        if let Some(event) = self.cache.events.get(id) {
            return Ok(Some(event));
        }
        let event: Option<Event> = self.db.read_point(|conn| {
            Ok(query_docs(conn, "SELECT doc FROM events WHERE id = ?1", [id.as_str()])?.pop())
        })?;
        let event = event.map(Arc::new);
        if let Some(event) = &event {
            self.cache.events.insert(id.clone(), event.clone());
        }
        Ok(event)
    }

    async fn get_delivery(&self, id: &OutboundDeliveryId) -> StoreResult<Option<Delivery>> {
        if let Some(delivery) = self.cache.deliveries.get(id) {
            return Ok(Some(delivery));
        }
        self.db.read_point(|conn| {
            Ok(query_docs(
                conn,
                "SELECT doc FROM deliveries WHERE id = ?1",
                [id.as_str()],
            )?
            .pop())
        })
    }

    async fn save_delivery(&self, delivery: &Delivery) -> StoreResult<()> {
        let row = DeliveryRow::new(delivery)?;
        // Dropped before the write: from now on, reads see the database.
        self.cache.deliveries.remove(&delivery.id);
        self.db.write(move |tx| upsert_delivery(tx, &row)).await?;
        self.cache.claims.release(delivery);
        Ok(())
    }

    async fn claim_delivery(
        &self,
        delivery: &Delivery,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        Ok(self.cache.claims.claim(delivery, until, now))
    }

    async fn list_deliveries(&self, query: &DeliveryQuery) -> StoreResult<DeliveryPage> {
        let query = query.clone();
        self.db
            .read(move |conn| list_deliveries(conn, &query))
            .await
    }

    async fn delivery_counts(&self) -> StoreResult<DeliveryCounts> {
        self.db.read(delivery_counts).await
    }

    async fn reserve_rate_slot(
        &self,
        id: &SubscriptionId,
        lane: RateLane,
        per_minute: u32,
        now: DateTime<Utc>,
    ) -> StoreResult<std::time::Duration> {
        let id = id.as_str().to_owned();
        self.db
            .write(move |tx| reserve(tx, &id, lane, per_minute, now))
            .await
    }
}

#[cfg(test)]
#[path = "outbound_tests.rs"]
mod tests;
