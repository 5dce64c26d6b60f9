//! `POST /api/v1/test`, `POST /api/v1/verify-signature`, `GET /api/v1/stats`.

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{StatusCode, Uri};
use axum::routing::{get, post};
use axum::{Json, Router};

use super::error::{ApiError, ApiResult};
use super::extract::ApiJson;
use crate::services::outbound::deliveries::{stats, Stats};
use crate::services::outbound::testing::{
    test_url, verify_signature, TestResult, TestUrl, VerifyResult, VerifySignature,
};
use crate::services::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/test", post(test_endpoint))
        .route("/api/v1/verify-signature", post(verify))
        .route("/api/v1/stats", get(get_stats))
}

async fn test_endpoint(
    State(state): State<AppState>,
    ApiJson(input): ApiJson<TestUrl>,
) -> ApiResult<Json<TestResult>> {
    Ok(Json(test_url(&state, input).await?))
}

/// Takes its fields from the query string (as the brief's curl example sends them) or from
/// a JSON body.
async fn verify(uri: Uri, body: Bytes) -> ApiResult<Json<VerifyResult>> {
    let input: VerifySignature = if uri.query().is_some_and(|q| !q.is_empty()) {
        Query::try_from_uri(&uri)?.0
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::Malformed {
            status: StatusCode::BAD_REQUEST,
            message: format!(
                "send payload, timestamp, signature and secret in the query or a JSON body: {e}"
            ),
        })?
    };
    Ok(Json(verify_signature(&input)))
}

async fn get_stats(State(state): State<AppState>) -> ApiResult<Json<Stats>> {
    Ok(Json(stats(&state).await?))
}
