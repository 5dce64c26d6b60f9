//! `POST /api/webhook/{agentId}?source=…`: the public, write-only ingestion endpoint.

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use axum::{Json, Router};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde::{Deserialize, Serialize};

use super::error::{ApiError, ApiResult};
use super::extract::{ApiPath, ApiQuery};
use crate::domain::ids::{AgentId, Source};
use crate::services::ingest::{ingest, IngestRequest, Receipt};
use crate::services::{AppState, ServiceError};

pub fn router() -> Router<AppState> {
    Router::new().route("/api/webhook/{agent_id}", post(receive_webhook))
}

#[derive(Deserialize)]
struct IngestPath {
    agent_id: String,
}

#[derive(Deserialize)]
struct IngestParams {
    source: Option<String>,
}

#[derive(Serialize)]
struct ReceiptOut {
    id: String,
    received_at: String,
    duplicate: bool,
}

impl From<Receipt> for ReceiptOut {
    fn from(receipt: Receipt) -> Self {
        Self {
            id: receipt.id.to_string(),
            received_at: super::timestamp(receipt.received_at),
            duplicate: receipt.duplicate,
        }
    }
}

async fn receive_webhook(
    State(state): State<AppState>,
    ApiPath(IngestPath { agent_id }): ApiPath<IngestPath>,
    ApiQuery(params): ApiQuery<IngestParams>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<ReceiptOut>> {
    let agent = AgentId::parse(&agent_id)?;
    let source = Source::parse_optional(params.source.as_deref())?;
    let body = read_body(body, state.config.max_body_bytes).await?;
    let receipt = ingest(
        &state,
        IngestRequest {
            agent,
            source,
            headers,
            body,
        },
    )
    .await?;
    Ok(Json(receipt.into()))
}

/// Reads the whole body, refusing (never truncating) one over `limit` bytes.
async fn read_body(body: Body, limit: usize) -> ApiResult<bytes::Bytes> {
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.is::<LengthLimitError>() => {
            Err(ServiceError::PayloadTooLarge { limit }.into())
        }
        Err(error) => Err(ApiError::Malformed {
            status: axum::http::StatusCode::BAD_REQUEST,
            message: format!("could not read the request body: {error}"),
        }),
    }
}
