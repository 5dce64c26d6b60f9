//! The inbox on SQLite: one writer thread that group-commits, and a pool of readers.
//!
//! Every write goes through the group-commit writer thread (`writer.rs`), which takes all
//! writes waiting at that moment into one transaction and fsyncs once (WAL,
//! `synchronous=FULL`): each caller is answered only after the commit that holds its write,
//! so a 2xx still means durable, but a burst of requests shares one fsync instead of paying
//! one each.

use std::path::Path;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, Row};

use super::db::{db_error, parse_time, text_time, Database};
use crate::domain::ids::{AgentId, Source};
use crate::domain::item::{DeliveryId, InboxItem, ItemId, RowKey};
use crate::ports::store::StoreResult;
use crate::ports::{InboxStore, InsertOutcome, MarkOutcome, PendingPage, PendingQuery, StoreError};

const MIGRATIONS: [&str; 1] = [r#"
CREATE TABLE inbox_items (
    agent_id     TEXT    NOT NULL,
    row_key      TEXT    NOT NULL,
    source       TEXT    NOT NULL,
    received_at  TEXT    NOT NULL,
    content_type TEXT,
    headers      TEXT    NOT NULL,
    payload      BLOB    NOT NULL,
    delivery_id  TEXT,
    processed    INTEGER NOT NULL DEFAULT 0,
    processed_at TEXT,
    expires_at   INTEGER
);
-- A rowid table, not WITHOUT ROWID: rows carry payloads of up to hundreds of KiB, and new
-- rows append at the end of the table instead of landing mid-tree.
CREATE UNIQUE INDEX item_key ON inbox_items (agent_id, row_key);
-- The pending list reads these partial indexes, never the whole table.
CREATE INDEX pending_by_time  ON inbox_items (row_key, agent_id) WHERE processed = 0;
CREATE INDEX pending_by_agent ON inbox_items (agent_id, row_key) WHERE processed = 0;
CREATE INDEX processed_expiry ON inbox_items (expires_at) WHERE processed = 1;
CREATE TABLE dedupe (
    agent_id    TEXT    NOT NULL,
    source      TEXT    NOT NULL,
    delivery_id TEXT    NOT NULL,
    item_id     TEXT    NOT NULL,
    received_at TEXT    NOT NULL,
    expires_at  INTEGER NOT NULL,
    PRIMARY KEY (agent_id, source, delivery_id)
) WITHOUT ROWID;
"#];

const INSERT_ITEM: &str = "INSERT INTO inbox_items (agent_id, row_key, source, received_at, \
                           content_type, headers, payload, delivery_id, processed) \
                           VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 0)";

/// Pending items of every agent, in time order, after a cursor. `INDEXED BY` makes SQLite
/// refuse to run the query at all rather than fall back to a table scan.
const PENDING_OF_ALL: &str = "SELECT agent_id, row_key, source, received_at, content_type, \
     headers, payload, delivery_id, processed FROM inbox_items INDEXED BY pending_by_time \
     WHERE processed = 0 AND (row_key, agent_id) > (?1, ?2) ORDER BY row_key, agent_id LIMIT ?3";
/// Pending items of one agent, in time order, after a cursor.
const PENDING_OF_AGENT: &str = "SELECT agent_id, row_key, source, received_at, content_type, \
     headers, payload, delivery_id, processed FROM inbox_items INDEXED BY pending_by_agent \
     WHERE processed = 0 AND agent_id = ?1 AND row_key > ?2 ORDER BY row_key LIMIT ?3";

/// The SQLite inbox store. Cheap to share behind an `Arc`.
pub struct SqliteStore {
    db: Database,
}

impl SqliteStore {
    /// Opens (creating and migrating if needed) the database at `path`.
    pub fn open(path: impl AsRef<Path>) -> StoreResult<Self> {
        Ok(Self {
            db: Database::open(path.as_ref(), &MIGRATIONS, "sqlite-writer")?,
        })
    }

    /// Deletes processed items and dedupe markers that expired by `now`; returns how many
    /// rows went. `nexus serve` runs it on an interval (DynamoDB has TTL for this).
    pub async fn purge_expired(&self, now: DateTime<Utc>) -> StoreResult<usize> {
        self.db.write(move |tx| purge(tx, now)).await
    }
}

/// An item with the values its row needs converted before it goes to the writer thread:
/// the writer is serial, so every conversion done here instead of in its job is throughput
/// gained.
struct NewRow {
    item: InboxItem,
    headers: String,
    received_at: String,
    now: i64,
    dedupe_until: i64,
}

impl NewRow {
    fn new(item: InboxItem, now: DateTime<Utc>, dedupe_until: DateTime<Utc>) -> StoreResult<Self> {
        let headers = serde_json::to_string(&item.headers)
            .map_err(|e| StoreError::Corrupt(format!("headers: {e}")))?;
        Ok(Self {
            received_at: text_time(item.received_at),
            item,
            headers,
            now: now.timestamp_millis(),
            dedupe_until: dedupe_until.timestamp_millis(),
        })
    }
}

fn insert(tx: &Connection, row: &NewRow) -> StoreResult<InsertOutcome> {
    let item = &row.item;
    let agent = item.id.agent.as_str();
    if let Some(delivery) = &item.delivery_id {
        let first: Option<(String, String)> = tx
            .prepare_cached(
                "SELECT item_id, received_at FROM dedupe
                 WHERE agent_id = ?1 AND source = ?2 AND delivery_id = ?3 AND expires_at > ?4",
            )
            .map_err(db_error)?
            .query_row(
                params![agent, item.source.as_str(), delivery.as_str(), row.now],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(db_error)?;
        if let Some((id, received_at)) = first {
            return Ok(InsertOutcome::Duplicate {
                id: id
                    .parse()
                    .map_err(|e| StoreError::Corrupt(format!("{e}")))?,
                received_at: parse_time(&received_at)?,
            });
        }
        tx.prepare_cached(
            "INSERT OR REPLACE INTO dedupe
             (agent_id, source, delivery_id, item_id, received_at, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .map_err(db_error)?
        .execute(params![
            agent,
            item.source.as_str(),
            delivery.as_str(),
            item.id.to_string(),
            row.received_at,
            row.dedupe_until
        ])
        .map_err(db_error)?;
    }
    tx.prepare_cached(INSERT_ITEM)
        .map_err(db_error)?
        .execute(params![
            agent,
            item.id.row_key.as_str(),
            item.source.as_str(),
            row.received_at,
            item.content_type,
            row.headers,
            item.payload.as_ref(),
            item.delivery_id.as_ref().map(DeliveryId::as_str),
        ])
        .map_err(db_error)?;
    Ok(InsertOutcome::Stored)
}

fn mark(
    tx: &Connection,
    id: &ItemId,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> StoreResult<MarkOutcome> {
    let key = params![id.agent.as_str(), id.row_key.as_str()];
    let state: Option<(bool, Option<i64>)> = tx
        .query_row(
            "SELECT processed, expires_at FROM inbox_items WHERE agent_id = ?1 AND row_key = ?2",
            key,
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()
        .map_err(db_error)?;
    Ok(match state {
        None => MarkOutcome::Unknown,
        Some((true, Some(expiry))) if expiry <= now.timestamp_millis() => MarkOutcome::Unknown,
        Some((true, _)) => MarkOutcome::AlreadyProcessed,
        Some((false, _)) => {
            tx.execute(
                "UPDATE inbox_items SET processed = 1, processed_at = ?3, expires_at = ?4
                 WHERE agent_id = ?1 AND row_key = ?2",
                params![
                    id.agent.as_str(),
                    id.row_key.as_str(),
                    text_time(now),
                    expires_at.timestamp_millis()
                ],
            )
            .map_err(db_error)?;
            MarkOutcome::Processed
        }
    })
}

fn purge(tx: &Connection, now: DateTime<Utc>) -> StoreResult<usize> {
    let now = now.timestamp_millis();
    let items = tx
        .execute(
            "DELETE FROM inbox_items WHERE processed = 1 AND expires_at <= ?1",
            [now],
        )
        .map_err(db_error)?;
    let markers = tx
        .execute("DELETE FROM dedupe WHERE expires_at <= ?1", [now])
        .map_err(db_error)?;
    Ok(items + markers)
}

fn query_items(
    statement: &mut rusqlite::CachedStatement<'_>,
    params: impl rusqlite::Params,
) -> StoreResult<Vec<InboxItem>> {
    let rows = statement
        .query_map(params, item_from_row)
        .map_err(db_error)?;
    let mut items = Vec::new();
    for row in rows {
        items.push(row.map_err(db_error)??);
    }
    Ok(items)
}

fn item_from_row(row: &Row<'_>) -> rusqlite::Result<StoreResult<InboxItem>> {
    let agent: String = row.get(0)?;
    let row_key: String = row.get(1)?;
    let source: String = row.get(2)?;
    let received_at: String = row.get(3)?;
    let content_type: Option<String> = row.get(4)?;
    let headers: String = row.get(5)?;
    let payload: Vec<u8> = row.get(6)?;
    let delivery_id: Option<String> = row.get(7)?;
    let processed: bool = row.get(8)?;
    let corrupt =
        |e: &dyn std::fmt::Display| StoreError::Corrupt(format!("item {agent}:{row_key}: {e}"));
    Ok((|| {
        Ok(InboxItem {
            id: ItemId {
                agent: AgentId::parse(&agent).map_err(|e| corrupt(&e))?,
                row_key: RowKey::parse(&row_key).map_err(|e| corrupt(&e))?,
            },
            source: Source::parse(&source).map_err(|e| corrupt(&e))?,
            received_at: parse_time(&received_at)?,
            content_type,
            headers: serde_json::from_str(&headers).map_err(|e| corrupt(&e))?,
            payload: payload.into(),
            delivery_id: delivery_id
                .map(|d| DeliveryId::parse("delivery id", &d))
                .transpose()
                .map_err(|e| corrupt(&e))?,
            processed,
        })
    })())
}

#[async_trait]
impl InboxStore for SqliteStore {
    async fn insert(
        &self,
        item: InboxItem,
        now: DateTime<Utc>,
        dedupe_until: DateTime<Utc>,
    ) -> StoreResult<InsertOutcome> {
        let row = NewRow::new(item, now, dedupe_until)?;
        self.db.write(move |tx| insert(tx, &row)).await
    }

    async fn pending(&self, query: &PendingQuery) -> StoreResult<PendingPage> {
        let query = query.clone();
        self.db
            .read(move |conn| {
                // The cursor is the last item listed; an empty key sorts before every row key.
                let (after_key, after_agent) = match &query.after {
                    Some(id) => (id.row_key.as_str().to_owned(), id.agent.to_string()),
                    None => (String::new(), String::new()),
                };
                let limit = (query.limit + 1) as i64;
                let mut items = match &query.agent {
                    Some(agent) => query_items(
                        &mut conn.prepare_cached(PENDING_OF_AGENT).map_err(db_error)?,
                        params![agent.as_str(), after_key, limit],
                    ),
                    None => query_items(
                        &mut conn.prepare_cached(PENDING_OF_ALL).map_err(db_error)?,
                        params![after_key, after_agent, limit],
                    ),
                }?;
                let more = items.len() > query.limit;
                items.truncate(query.limit);
                Ok(PendingPage { items, more })
            })
            .await
    }

    async fn mark_processed(
        &self,
        ids: &[ItemId],
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<Vec<MarkOutcome>> {
        let ids = ids.to_vec();
        self.db
            .write(move |tx| ids.iter().map(|id| mark(tx, id, now, expires_at)).collect())
            .await
    }
}

#[cfg(test)]
#[path = "sqlite_tests.rs"]
mod tests;
