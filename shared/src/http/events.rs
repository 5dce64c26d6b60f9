//! `/api/v1/events`: publishing, one event or a batch.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::error::{ApiError, ApiResult};
use super::extract::ApiJson;
use super::timestamp;
use crate::domain::outbound::NewEvent;
use crate::services::outbound::publish::{self, publish, Published, MAX_BATCH};
use crate::services::{AppState, ServiceError};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/events", post(publish_event))
        .route("/api/v1/events/batch", post(publish_batch))
}

#[derive(Serialize)]
struct DeliveryRef {
    id: String,
    subscription_id: String,
}

#[derive(Serialize)]
struct PublishedOut {
    id: String,
    #[serde(rename = "type")]
    event_type: String,
    timestamp: String,
    deliveries: Vec<DeliveryRef>,
    subscriptions_notified: usize,
    duplicate: bool,
}

impl From<Published> for PublishedOut {
    fn from(p: Published) -> Self {
        Self {
            id: p.event.id.to_string(),
            event_type: p.event.event_type.to_string(),
            timestamp: timestamp(p.event.timestamp),
            subscriptions_notified: p.deliveries.len(),
            deliveries: p
                .deliveries
                .into_iter()
                .map(|(id, subscription)| DeliveryRef {
                    id: id.to_string(),
                    subscription_id: subscription.to_string(),
                })
                .collect(),
            duplicate: p.duplicate,
        }
    }
}

fn idempotency_key(headers: &HeaderMap) -> ApiResult<Option<&str>> {
    headers
        .get("idempotency-key")
        .map(|v| {
            v.to_str().map_err(|_| {
                ApiError::from(ServiceError::BadRequest(
                    "Idempotency-Key must be printable ASCII".into(),
                ))
            })
        })
        .transpose()
}

async fn publish_event(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(event): ApiJson<NewEvent>,
) -> ApiResult<(StatusCode, Json<PublishedOut>)> {
    let published = publish(&state, event, idempotency_key(&headers)?).await?;
    Ok((StatusCode::ACCEPTED, Json(published.into())))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchIn {
    events: Vec<NewEvent>,
}

#[derive(Serialize)]
struct BatchOut {
    events: Vec<PublishedOut>,
    count: usize,
}

/// Publishes every event of the batch, in order, in one store commit where the store can
/// (SQLite; DynamoDB packs whole events into as few transactions as fit). With an
/// `Idempotency-Key`, event `i` uses `{key}:{i}`, so a retried batch re-publishes nothing
/// that was published: after an error, some events may be published and the rest not, and
/// a retry with the same key completes it.
async fn publish_batch(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(batch): ApiJson<BatchIn>,
) -> ApiResult<(StatusCode, Json<BatchOut>)> {
    if batch.events.is_empty() || batch.events.len() > MAX_BATCH {
        return Err(
            ServiceError::BadRequest(format!("a batch holds 1 to {MAX_BATCH} events")).into(),
        );
    }
    let key = idempotency_key(&headers)?;
    let inputs = batch
        .events
        .into_iter()
        .enumerate()
        .map(|(index, event)| (event, key.map(|k| format!("{k}:{index}"))))
        .collect();
    let events: Vec<PublishedOut> = publish::publish_batch(&state, inputs)
        .await?
        .into_iter()
        .map(PublishedOut::from)
        .collect();
    Ok((
        StatusCode::ACCEPTED,
        Json(BatchOut {
            count: events.len(),
            events,
        }),
    ))
}
