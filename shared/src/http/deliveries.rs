//! `/api/v1/deliveries`: the delivery log, pending retries, manual retry.

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::error::ApiResult;
use super::extract::{ApiPath, ApiQuery};
use super::timestamp;
use crate::domain::outbound::{
    Attempt, Delivery, DeliveryStatus, OutboundDeliveryId, SubscriptionId,
};
use crate::services::outbound::deliveries;
use crate::services::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/deliveries", get(list_deliveries))
        .route("/api/v1/deliveries/pending", get(list_pending))
        .route("/api/v1/deliveries/{id}", get(get_delivery))
        .route("/api/v1/deliveries/{id}/retry", post(retry_delivery))
}

#[derive(Serialize)]
struct AttemptOut {
    number: u32,
    at: String,
    status_code: Option<u16>,
    latency_ms: u64,
    response_body: Option<String>,
    response_truncated: bool,
    error: Option<String>,
}

#[derive(Serialize)]
struct DeliveryOut {
    id: String,
    event_id: String,
    subscription_id: String,
    event_type: String,
    status: DeliveryStatus,
    attempt_count: usize,
    attempts: Vec<AttemptOut>,
    next_attempt_at: Option<String>,
    manual: bool,
    created_at: String,
    updated_at: String,
}

impl From<Attempt> for AttemptOut {
    fn from(a: Attempt) -> Self {
        Self {
            number: a.number,
            at: timestamp(a.at),
            status_code: a.status_code,
            latency_ms: a.latency_ms,
            response_body: a.response_body,
            response_truncated: a.response_truncated,
            error: a.error,
        }
    }
}

impl From<Delivery> for DeliveryOut {
    fn from(d: Delivery) -> Self {
        Self {
            id: d.id.to_string(),
            event_id: d.event_id.to_string(),
            subscription_id: d.subscription_id.to_string(),
            event_type: d.event_type.to_string(),
            status: d.status,
            attempt_count: d.attempts.len(),
            attempts: d.attempts.into_iter().map(Into::into).collect(),
            next_attempt_at: d.next_attempt_at.map(timestamp),
            manual: d.manual,
            created_at: timestamp(d.created_at),
            updated_at: timestamp(d.updated_at),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListParams {
    subscription_id: Option<String>,
    status: Option<DeliveryStatus>,
    limit: Option<usize>,
    cursor: Option<String>,
}

#[derive(Serialize)]
struct PageOut {
    deliveries: Vec<DeliveryOut>,
    count: usize,
    next_cursor: Option<String>,
}

async fn list_deliveries(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<ListParams>,
) -> ApiResult<Json<PageOut>> {
    let subscription = params
        .subscription_id
        .as_deref()
        .map(SubscriptionId::parse)
        .transpose()?;
    // The cursor is the last delivery id of the previous page: ids are already opaque.
    let after = params
        .cursor
        .as_deref()
        .map(OutboundDeliveryId::parse)
        .transpose()?;
    let page = deliveries::list(&state, subscription, params.status, after, params.limit).await?;
    let next_cursor = page
        .more
        .then(|| page.deliveries.last().map(|d| d.id.to_string()))
        .flatten();
    Ok(Json(PageOut {
        count: page.deliveries.len(),
        deliveries: page.deliveries.into_iter().map(Into::into).collect(),
        next_cursor,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PendingParams {
    limit: Option<usize>,
}

#[derive(Serialize)]
struct PendingOut {
    deliveries: Vec<DeliveryOut>,
    count: usize,
}

async fn list_pending(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<PendingParams>,
) -> ApiResult<Json<PendingOut>> {
    let limit = params.limit.unwrap_or(100).clamp(1, deliveries::MAX_PAGE);
    let pending = deliveries::pending(&state, limit).await?;
    Ok(Json(PendingOut {
        count: pending.len(),
        deliveries: pending.into_iter().map(Into::into).collect(),
    }))
}

async fn get_delivery(
    State(state): State<AppState>,
    ApiPath(raw): ApiPath<String>,
) -> ApiResult<Json<DeliveryOut>> {
    let id = OutboundDeliveryId::parse(&raw)?;
    Ok(Json(deliveries::get(&state, &id).await?.into()))
}

async fn retry_delivery(
    State(state): State<AppState>,
    ApiPath(raw): ApiPath<String>,
) -> ApiResult<Json<DeliveryOut>> {
    let id = OutboundDeliveryId::parse(&raw)?;
    Ok(Json(deliveries::retry(&state, &id).await?.into()))
}
