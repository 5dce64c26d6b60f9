//! The consumer API: `GET /api/webhook/pending`, `DELETE /api/webhook/items`.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::error::ApiResult;
use super::extract::{ApiJson, ApiQuery};
use crate::domain::cursor::PendingCursor;
use crate::domain::ids::AgentId;
use crate::domain::item::InboxItem;
use crate::domain::payload::{render, PayloadEncoding, RenderedPayload};
use crate::services::consume::{mark_processed, pending, MarkResult, PendingRequest};
use crate::services::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/webhook/pending", get(list_pending))
        .route("/api/webhook/items", delete(delete_items))
}

#[derive(Deserialize)]
struct PendingParams {
    agent: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
}

#[derive(Serialize)]
struct ItemOut {
    id: String,
    agent_id: String,
    source: String,
    received_at: String,
    content_type: Option<String>,
    payload_encoding: PayloadEncoding,
    payload: RenderedPayload,
    headers: BTreeMap<String, String>,
    delivery_id: Option<String>,
}

impl From<InboxItem> for ItemOut {
    fn from(item: InboxItem) -> Self {
        let (payload_encoding, payload) = render(item.content_type.as_deref(), &item.payload);
        Self {
            id: item.id.to_string(),
            agent_id: item.id.agent.to_string(),
            source: item.source.to_string(),
            received_at: super::timestamp(item.received_at),
            content_type: item.content_type,
            payload_encoding,
            payload,
            headers: item.headers,
            delivery_id: item.delivery_id.map(|d| d.as_str().to_owned()),
        }
    }
}

#[derive(Serialize)]
struct PendingOut {
    /// Items grouped by agent id, each group oldest first.
    agents: BTreeMap<String, Vec<ItemOut>>,
    count: usize,
    next_cursor: Option<String>,
}

async fn list_pending(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<PendingParams>,
) -> ApiResult<Json<PendingOut>> {
    let request = PendingRequest {
        agent: params.agent.as_deref().map(AgentId::parse).transpose()?,
        cursor: params
            .cursor
            .as_deref()
            .map(PendingCursor::decode)
            .transpose()?,
        limit: params.limit,
    };
    let page = pending(&state, request).await?;
    let count = page.items.len();
    let mut agents: BTreeMap<String, Vec<ItemOut>> = BTreeMap::new();
    for item in page.items {
        agents
            .entry(item.id.agent.to_string())
            .or_default()
            .push(item.into());
    }
    Ok(Json(PendingOut {
        agents,
        count,
        next_cursor: page.next_cursor.map(|c| c.encode()),
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeleteItemsIn {
    ids: Vec<String>,
}

#[derive(Serialize)]
struct DeleteItemsOut {
    processed: Vec<String>,
    already_processed: Vec<String>,
    unknown: Vec<String>,
}

impl From<MarkResult> for DeleteItemsOut {
    fn from(result: MarkResult) -> Self {
        Self {
            processed: result.processed,
            already_processed: result.already_processed,
            unknown: result.unknown,
        }
    }
}

async fn delete_items(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<DeleteItemsIn>,
) -> ApiResult<Json<DeleteItemsOut>> {
    let result = mark_processed(&state, body.ids).await?;
    Ok(Json(result.into()))
}
