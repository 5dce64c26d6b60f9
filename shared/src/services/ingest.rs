//! Generic ingestion: store any webhook request as-is for an agent.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::HeaderMap;

use super::auth::verify_webhook;
use super::{AppState, ServiceError, ServiceResult};
use crate::domain::headers;
use crate::domain::ids::{AgentId, Source};
use crate::domain::item::{InboxItem, ItemId};
use crate::domain::payload;
use crate::domain::verify::VerifyRequest;
use crate::ports::InsertOutcome;

/// One received webhook request, with its path and query already parsed.
pub struct IngestRequest {
    pub agent: AgentId,
    pub source: Source,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// The public URL the provider called (`scheme://host/path?query`): Twilio signs it,
    /// and the token scheme reads its `token` parameter.
    pub url: String,
}

/// What the sender is told: the item's id and when it was received.
#[derive(Debug, Clone, PartialEq)]
pub struct Receipt {
    pub id: ItemId,
    pub received_at: DateTime<Utc>,
    /// True when this was a redelivery of an item already stored.
    pub duplicate: bool,
}

/// Verifies (on the raw bytes, before any parsing), checks and durably stores one request.
/// Every refusal stores nothing.
pub async fn ingest(state: &AppState, request: IngestRequest) -> ServiceResult<Receipt> {
    let IngestRequest {
        agent,
        source,
        headers,
        body,
        url,
    } = request;
    let limit = state.config.max_body_bytes;
    if body.len() > limit {
        return Err(ServiceError::PayloadTooLarge { limit });
    }
    let now = state.clock.now();
    let signed = VerifyRequest {
        headers: &headers,
        body: &body,
        url: &url,
        now,
    };
    verify_webhook(state, &agent, &source, &signed).await?;

    let content_type = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if payload::declares_json(content_type.as_deref()) {
        payload::check_json(&body).map_err(ServiceError::InvalidJson)?;
    }
    let delivery_id = headers::delivery_id(&headers)?;

    let item = InboxItem {
        id: ItemId::new(agent, now),
        source,
        received_at: now,
        content_type,
        headers: headers::redacted(&headers),
        payload: body,
        delivery_id,
        processed: false,
    };
    let dedupe_until = now + state.config.dedupe_window;
    let (id, received_at) = (item.id.clone(), item.received_at);
    match state.store.insert(item, now, dedupe_until).await? {
        InsertOutcome::Stored => Ok(Receipt {
            id,
            received_at,
            duplicate: false,
        }),
        InsertOutcome::Duplicate { id, received_at } => Ok(Receipt {
            id,
            received_at,
            duplicate: true,
        }),
    }
}
