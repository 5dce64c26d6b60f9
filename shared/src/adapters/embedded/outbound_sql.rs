//! The statements the outbound store runs, each a function over one connection: writer
//! jobs (`publish`, `reserve`, `upsert_delivery`) and reads.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};

use super::db::{db_error, parse_time};
use super::outbound_schema::{corrupt, nanos_time, DeliveryRow, EventRow};
use crate::domain::outbound::{
    rate_slot, Delivery, DeliveryStatus, EventId, OutboundDeliveryId, SubscriptionId,
};
use crate::ports::outbound::{
    DeliveryCounts, DeliveryPage, DeliveryQuery, PublishOutcome, RateLane,
};
use crate::ports::store::StoreResult;

const INSERT_DELIVERY: &str = "INSERT INTO deliveries \
     (id, subscription_id, event_id, status, success_latency_ms, doc) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
/// By the row number the read before it found: one index lookup per save instead of two.
const UPDATE_DELIVERY: &str = "UPDATE deliveries \
     SET status = ?2, success_latency_ms = ?3, doc = ?4 WHERE rowid = ?1";
/// Adds to the count (and latency total) of deliveries in a status.
const COUNT_DELIVERIES: &str = "INSERT INTO delivery_counts (status, count, latency_ms) \
     VALUES (?1, ?2, ?3) ON CONFLICT (status) DO UPDATE \
     SET count = count + excluded.count, latency_ms = latency_ms + excluded.latency_ms";
/// Moves one delivery from the count of one status to another's, in one statement.
const MOVE_COUNTED_DELIVERY: &str = "INSERT INTO delivery_counts (status, count, latency_ms) \
     VALUES (?1, -1, ?2), (?3, 1, ?4) ON CONFLICT (status) DO UPDATE \
     SET count = count + excluded.count, latency_ms = latency_ms + excluded.latency_ms";
const COUNT_EVENT: &str = "INSERT INTO event_counts (type, count) VALUES (?1, 1) \
     ON CONFLICT (type) DO UPDATE SET count = count + 1";

/// Deliveries newest first, before a cursor, one statement per filter combination. Each
/// names its index, so SQLite refuses to run it rather than fall back to a scan.
const NEWEST: &str = "SELECT doc FROM deliveries INDEXED BY deliveries_by_id \
     WHERE id < ?1 ORDER BY id DESC LIMIT ?2";
const NEWEST_WITH_STATUS: &str = "SELECT doc FROM deliveries INDEXED BY deliveries_by_status \
     WHERE status = ?3 AND id < ?1 ORDER BY id DESC LIMIT ?2";
/// A tried delivery (any status but pending) by its subscription's index; the partial
/// index serves only a statement that repeats its condition.
const NEWEST_OF_SUBSCRIPTION_TRIED: &str = "SELECT id, doc FROM deliveries \
     INDEXED BY deliveries_tried_by_subscription \
     WHERE subscription_id = ?3 AND status = ?4 AND status != 'pending' AND id < ?1 \
     ORDER BY id DESC LIMIT ?2";
/// A pending delivery by the status index, filtered on the subscription it carries: the
/// scan is bounded by the deliveries waiting for a first attempt, the queue's backlog.
const NEWEST_OF_SUBSCRIPTION_PENDING: &str = "SELECT id, doc FROM deliveries \
     INDEXED BY deliveries_by_status \
     WHERE status = 'pending' AND subscription_id = ?3 AND id < ?1 \
     ORDER BY id DESC LIMIT ?2";

/// Sorts after every delivery id (`dlv_` and a lowercase ULID): the cursor of page one.
const AFTER_NEWEST: &str = "~";

/// Inserts or replaces a delivery, and moves it between the counts of its old and new
/// status.
pub(super) fn upsert_delivery(tx: &Connection, row: &DeliveryRow) -> StoreResult<()> {
    let before: Option<(i64, String, Option<i64>)> = tx
        .prepare_cached("SELECT rowid, status, success_latency_ms FROM deliveries WHERE id = ?1")
        .map_err(db_error)?
        .query_row([&row.id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()
        .map_err(db_error)?;
    let Some((rowid, status, latency)) = before else {
        insert_delivery(tx, row)?;
        return count_deliveries(tx, row.status, 1, row.success_latency_ms.unwrap_or(0));
    };
    tx.prepare_cached(UPDATE_DELIVERY)
        .map_err(db_error)?
        .execute(params![rowid, row.status, row.success_latency_ms, row.doc])
        .map_err(db_error)?;
    if status != row.status || latency != row.success_latency_ms {
        tx.prepare_cached(MOVE_COUNTED_DELIVERY)
            .map_err(db_error)?
            .execute(params![
                status,
                -latency.unwrap_or(0),
                row.status,
                row.success_latency_ms.unwrap_or(0)
            ])
            .map_err(db_error)?;
    }
    Ok(())
}

fn insert_delivery(tx: &Connection, row: &DeliveryRow) -> StoreResult<()> {
    tx.prepare_cached(INSERT_DELIVERY)
        .map_err(db_error)?
        .execute(params![
            row.id,
            row.subscription_id,
            row.event_id,
            row.status,
            row.success_latency_ms,
            row.doc
        ])
        .map_err(db_error)?;
    Ok(())
}

fn count_deliveries(tx: &Connection, status: &str, by: i64, latency_ms: i64) -> StoreResult<()> {
    tx.prepare_cached(COUNT_DELIVERIES)
        .map_err(db_error)?
        .execute(params![status, by, latency_ms])
        .map_err(db_error)?;
    Ok(())
}

/// Stores an event, its deliveries and its idempotency key, unless the key was used.
pub(super) fn publish(
    tx: &Connection,
    event: &EventRow,
    deliveries: &[DeliveryRow],
    key: Option<&str>,
    now: &str,
) -> StoreResult<PublishOutcome> {
    if let Some(key) = key {
        let first: Option<(String, String)> = tx
            .prepare_cached("SELECT event_id, delivery_ids FROM idempotency_keys WHERE key = ?1")
            .map_err(db_error)?
            .query_row([key], |row| Ok((row.get(0)?, row.get(1)?)))
            .optional()
            .map_err(db_error)?;
        if let Some((event_id, delivery_ids)) = first {
            return Ok(PublishOutcome::Duplicate {
                event_id: EventId::parse(&event_id).map_err(|e| corrupt(key, e))?,
                delivery_ids: serde_json::from_str(&delivery_ids).map_err(|e| corrupt(key, e))?,
            });
        }
        let ids: Vec<&str> = deliveries.iter().map(|d| d.id.as_str()).collect();
        tx.prepare_cached(
            "INSERT INTO idempotency_keys (key, event_id, delivery_ids, created_at)
             VALUES (?1, ?2, ?3, ?4)",
        )
        .map_err(db_error)?
        .execute(params![
            key,
            event.id,
            serde_json::to_string(&ids).map_err(|e| corrupt(key, e))?,
            now
        ])
        .map_err(db_error)?;
    }
    tx.prepare_cached("INSERT INTO events (id, type, created_at, doc) VALUES (?1, ?2, ?3, ?4)")
        .map_err(db_error)?
        .execute(params![
            event.id,
            event.event_type,
            event.created_at,
            event.doc
        ])
        .map_err(db_error)?;
    tx.prepare_cached(COUNT_EVENT)
        .map_err(db_error)?
        .execute([&event.event_type])
        .map_err(db_error)?;
    let mut by_status: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
    for delivery in deliveries {
        insert_delivery(tx, delivery)?;
        let counts = by_status.entry(delivery.status).or_default();
        counts.0 += 1;
        counts.1 += delivery.success_latency_ms.unwrap_or(0);
    }
    for (status, (count, latency_ms)) in by_status {
        count_deliveries(tx, status, count, latency_ms)?;
    }
    Ok(PublishOutcome::Stored)
}

/// Takes the subscription's next GCRA slot on `lane` and returns how long after `now` it
/// is. One writer job, so the read and the write cannot interleave with another
/// reservation's.
pub(super) fn reserve(
    tx: &Connection,
    id: &str,
    lane: RateLane,
    per_minute: u32,
    now: DateTime<Utc>,
) -> StoreResult<std::time::Duration> {
    let (select, upsert) = match lane {
        RateLane::Wake => (
            "SELECT tat FROM rate_slots WHERE subscription_id = ?1",
            "INSERT INTO rate_slots (subscription_id, tat) VALUES (?1, ?2)
             ON CONFLICT (subscription_id) DO UPDATE SET tat = excluded.tat",
        ),
        RateLane::Send => (
            "SELECT tat FROM send_slots WHERE subscription_id = ?1",
            "INSERT INTO send_slots (subscription_id, tat) VALUES (?1, ?2)
             ON CONFLICT (subscription_id) DO UPDATE SET tat = excluded.tat",
        ),
    };
    let stored: Option<String> = tx
        .prepare_cached(select)
        .map_err(db_error)?
        .query_row([id], |row| row.get(0))
        .optional()
        .map_err(db_error)?;
    let stored = stored.as_deref().map(parse_time).transpose()?;
    let (wait, tat) = rate_slot(stored, now, per_minute);
    tx.prepare_cached(upsert)
        .map_err(db_error)?
        .execute(params![id, nanos_time(tat)])
        .map_err(db_error)?;
    Ok(wait)
}

/// The document in column 0 of the rows `sql` selects, parsed.
pub(super) fn query_docs<T: serde::de::DeserializeOwned>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> StoreResult<Vec<T>> {
    let mut statement = conn.prepare_cached(sql).map_err(db_error)?;
    let docs = statement
        .query_map(params, |row| row.get::<_, String>(0))
        .map_err(db_error)?;
    docs.map(|doc| {
        let doc = doc.map_err(db_error)?;
        serde_json::from_str(&doc).map_err(|e| corrupt("stored document", e))
    })
    .collect()
}

pub(super) fn list_deliveries(
    conn: &Connection,
    query: &DeliveryQuery,
) -> StoreResult<DeliveryPage> {
    let after = query
        .after
        .as_ref()
        .map_or(AFTER_NEWEST, OutboundDeliveryId::as_str);
    let limit = i64::try_from(query.limit.saturating_add(1)).unwrap_or(i64::MAX);
    let subscription = query.subscription_id.as_ref().map(SubscriptionId::as_str);
    let status = query.status.map(DeliveryStatus::as_str);
    let mut deliveries: Vec<Delivery> = match (subscription, status) {
        (None, None) => query_docs(conn, NEWEST, params![after, limit]),
        (Some(sub), None) => newest_of_subscription(conn, sub, &DeliveryStatus::ALL, after, limit),
        (None, Some(status)) => query_docs(conn, NEWEST_WITH_STATUS, params![after, limit, status]),
        (Some(sub), Some(_)) => {
            let status = query.status.as_slice();
            newest_of_subscription(conn, sub, status, after, limit)
        }
    }?;
    let more = deliveries.len() > query.limit;
    deliveries.truncate(query.limit);
    Ok(DeliveryPage { deliveries, more })
}

/// A subscription's deliveries in any of `statuses`, newest first: the newest of each
/// status, merged. Tried statuses come from the partial by-subscription index, pending ones
/// from the status index (see `TRIED_BY_SUBSCRIPTION`); a second index by subscription
/// alone would be written on every publish for this listing only.
fn newest_of_subscription(
    conn: &Connection,
    subscription: &str,
    statuses: &[DeliveryStatus],
    after: &str,
    limit: i64,
) -> StoreResult<Vec<Delivery>> {
    let mut found: Vec<(String, String)> = Vec::new();
    for status in statuses {
        let read = |row: &rusqlite::Row<'_>| Ok((row.get(0)?, row.get(1)?));
        let mut statement;
        let rows = if *status == DeliveryStatus::Pending {
            statement = conn
                .prepare_cached(NEWEST_OF_SUBSCRIPTION_PENDING)
                .map_err(db_error)?;
            statement.query_map(params![after, limit, subscription], read)
        } else {
            statement = conn
                .prepare_cached(NEWEST_OF_SUBSCRIPTION_TRIED)
                .map_err(db_error)?;
            statement.query_map(params![after, limit, subscription, status.as_str()], read)
        }
        .map_err(db_error)?;
        for row in rows {
            found.push(row.map_err(db_error)?);
        }
    }
    found.sort_unstable_by(|a, b| b.0.cmp(&a.0));
    found.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    found
        .into_iter()
        .map(|(_, doc)| serde_json::from_str(&doc).map_err(|e| corrupt("stored document", e)))
        .collect()
}

pub(super) fn delivery_counts(conn: &Connection) -> StoreResult<DeliveryCounts> {
    // One read transaction: both tables from the same snapshot.
    let conn = conn.unchecked_transaction().map_err(db_error)?;
    let mut counts = DeliveryCounts::default();
    let mut by_type = conn
        .prepare_cached("SELECT type, count FROM event_counts WHERE count > 0")
        .map_err(db_error)?;
    let rows = by_type
        .query_map([], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
        })
        .map_err(db_error)?;
    let mut events_by_type = BTreeMap::new();
    for row in rows {
        let (event_type, count) = row.map_err(db_error)?;
        let count = u64::try_from(count).unwrap_or(0);
        counts.events += count;
        events_by_type.insert(event_type, count);
    }
    counts.events_by_type = events_by_type;
    let mut by_status = conn
        .prepare_cached("SELECT status, count, latency_ms FROM delivery_counts")
        .map_err(db_error)?;
    let rows = by_status
        .query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, i64>(2)?,
            ))
        })
        .map_err(db_error)?;
    for row in rows {
        let (status, count, latency_ms) = row.map_err(db_error)?;
        let count = u64::try_from(count).unwrap_or(0);
        match status.parse() {
            Ok(DeliveryStatus::Success) => {
                counts.succeeded += count;
                counts.success_latency_ms_total += u64::try_from(latency_ms).unwrap_or(0);
            }
            Ok(DeliveryStatus::Failed) => counts.failed += count,
            Ok(DeliveryStatus::Pending | DeliveryStatus::Retrying) => counts.pending += count,
            Ok(DeliveryStatus::Sending) => {}
            Err(e) => return Err(corrupt(&status, e)),
        }
    }
    Ok(counts)
}
