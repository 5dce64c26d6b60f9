//! The consumer API's use cases: list pending items, mark items processed.

use std::collections::HashSet;

use super::{AppState, ServiceError, ServiceResult};
use crate::domain::cursor::PendingCursor;
use crate::domain::ids::AgentId;
use crate::domain::item::{InboxItem, ItemId};
use crate::ports::{MarkOutcome, PendingQuery};

/// Most ids one mark-processed request may carry.
pub const MAX_IDS_PER_REQUEST: usize = 1000;

/// A request for one page of pending items.
#[derive(Debug, Default)]
pub struct PendingRequest {
    pub agent: Option<AgentId>,
    pub cursor: Option<PendingCursor>,
    pub limit: Option<usize>,
}

/// One page of pending items, oldest first, and where the next page starts.
#[derive(Debug)]
pub struct PendingResult {
    pub items: Vec<InboxItem>,
    pub next_cursor: Option<PendingCursor>,
}

/// Reads one page. A page ends at `limit` items or at the configured byte budget, whichever
/// comes first (but always holds at least one item), so no response outgrows what a Lambda
/// may return; the cursor then continues exactly where the page stopped.
pub async fn pending(state: &AppState, request: PendingRequest) -> ServiceResult<PendingResult> {
    let config = &state.config;
    let limit = request.limit.unwrap_or(config.pending_page_size);
    if limit == 0 || limit > config.pending_max_page_size {
        return Err(ServiceError::BadRequest(format!(
            "limit must be between 1 and {}",
            config.pending_max_page_size
        )));
    }
    let query = PendingQuery {
        agent: request.agent,
        after: request.cursor.map(|c| c.after),
        limit,
    };
    let page = state.store.pending(&query).await?;

    let mut items = Vec::with_capacity(page.items.len());
    let mut bytes = 0;
    let mut cut_short = false;
    for item in page.items {
        bytes += item.approx_size();
        if !items.is_empty() && bytes > config.pending_max_bytes {
            cut_short = true;
            break;
        }
        items.push(item);
    }
    let next_cursor = (page.more || cut_short)
        .then(|| {
            items.last().map(|last: &InboxItem| PendingCursor {
                after: last.id.clone(),
            })
        })
        .flatten();
    Ok(PendingResult { items, next_cursor })
}

/// The outcome of a mark-processed request, id by id.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct MarkResult {
    pub processed: Vec<String>,
    pub already_processed: Vec<String>,
    /// Ids that name no item (including ids that are not item ids at all).
    pub unknown: Vec<String>,
}

/// Marks items processed. Idempotent: repeating a request changes nothing and reports the
/// ids as already processed; unknown ids are reported, not treated as failures.
pub async fn mark_processed(state: &AppState, ids: Vec<String>) -> ServiceResult<MarkResult> {
    if ids.len() > MAX_IDS_PER_REQUEST {
        return Err(ServiceError::BadRequest(format!(
            "at most {MAX_IDS_PER_REQUEST} ids per request"
        )));
    }
    let mut seen = HashSet::new();
    let mut result = MarkResult::default();
    let mut parsed: Vec<(String, ItemId)> = Vec::new();
    for raw in ids {
        if !seen.insert(raw.clone()) {
            continue;
        }
        match raw.parse::<ItemId>() {
            Ok(id) => parsed.push((raw, id)),
            Err(_) => result.unknown.push(raw),
        }
    }
    let now = state.clock.now();
    let expires_at = now + state.config.processed_retention;
    let item_ids: Vec<ItemId> = parsed.iter().map(|(_, id)| id.clone()).collect();
    let outcomes = state
        .store
        .mark_processed(&item_ids, now, expires_at)
        .await?;
    for ((raw, _), outcome) in parsed.into_iter().zip(outcomes) {
        match outcome {
            MarkOutcome::Processed => result.processed.push(raw),
            MarkOutcome::AlreadyProcessed => result.already_processed.push(raw),
            MarkOutcome::Unknown => result.unknown.push(raw),
        }
    }
    Ok(result)
}
