//! The SQLite store's own contracts: group commit, expiry and dedupe windows.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

use super::*;

fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_795_400_000 + secs, 0).unwrap()
}

fn item(agent: &str, delivery: Option<&str>, received_at: DateTime<Utc>) -> InboxItem {
    InboxItem {
        id: ItemId::new(AgentId::parse(agent).unwrap(), received_at),
        source: Source::parse("github").unwrap(),
        received_at,
        content_type: Some("application/json".into()),
        headers: BTreeMap::from([("user-agent".into(), "test".into())]),
        payload: bytes::Bytes::from_static(b"{}"),
        delivery_id: delivery.map(|d| DeliveryId::parse("test", d).unwrap()),
        processed: false,
    }
}

fn all_pending() -> PendingQuery {
    PendingQuery {
        agent: None,
        after: None,
        limit: 1000,
    }
}

#[tokio::test]
async fn concurrent_inserts_are_all_committed_and_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nexus.db");
    let store = Arc::new(SqliteStore::open(&path).unwrap());

    let inserts = (0..200).map(|n| {
        let store = store.clone();
        tokio::spawn(async move {
            let item = item("burst", None, at(n));
            store.insert(item, at(n), at(n + 60)).await.unwrap()
        })
    });
    for insert in inserts {
        assert_eq!(insert.await.unwrap(), InsertOutcome::Stored);
    }
    drop(store);

    let reopened = SqliteStore::open(&path).unwrap();
    assert_eq!(
        reopened.pending(&all_pending()).await.unwrap().items.len(),
        200
    );
}

#[tokio::test]
async fn a_delivery_id_dedupes_only_within_its_window() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("nexus.db")).unwrap();
    let first = item("main", Some("d-1"), at(0));
    store.insert(first.clone(), at(0), at(100)).await.unwrap();

    let within = store
        .insert(item("main", Some("d-1"), at(50)), at(50), at(150))
        .await
        .unwrap();
    let after = store
        .insert(item("main", Some("d-1"), at(100)), at(100), at(200))
        .await
        .unwrap();

    assert_eq!(
        within,
        InsertOutcome::Duplicate {
            id: first.id.clone(),
            received_at: first.received_at
        }
    );
    assert_eq!(after, InsertOutcome::Stored);
}

#[tokio::test]
async fn processed_items_expire_after_retention_and_are_purged() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("nexus.db")).unwrap();
    let done = item("main", Some("d-2"), at(0));
    let waiting = item("main", None, at(1));
    store.insert(done.clone(), at(0), at(10)).await.unwrap();
    store.insert(waiting.clone(), at(1), at(11)).await.unwrap();

    let retention = Duration::seconds(100);
    let marked = store
        .mark_processed(std::slice::from_ref(&done.id), at(5), at(5) + retention)
        .await
        .unwrap();
    assert_eq!(marked, [MarkOutcome::Processed]);
    assert_eq!(
        store
            .mark_processed(std::slice::from_ref(&done.id), at(6), at(6) + retention)
            .await
            .unwrap(),
        [MarkOutcome::AlreadyProcessed]
    );
    // Past its expiry an item is gone as far as clients can tell, purged or not.
    assert_eq!(
        store
            .mark_processed(std::slice::from_ref(&done.id), at(105), at(205))
            .await
            .unwrap(),
        [MarkOutcome::Unknown]
    );

    let purged = store.purge_expired(at(105)).await.unwrap();
    assert_eq!(purged, 2, "the processed item and its dedupe marker");
    let pending = store.pending(&all_pending()).await.unwrap();
    assert_eq!(pending.items, [waiting], "pending items never expire");
}
