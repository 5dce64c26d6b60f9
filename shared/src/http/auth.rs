//! The consumer API's bearer-key middleware.

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::Response;

use super::error::ApiResult;
use crate::services::auth::check_api_key;
use crate::services::AppState;

/// Lets a request through only with `Authorization: Bearer <API key>`.
pub async fn require_api_key(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> ApiResult<Response> {
    let presented = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    check_api_key(&state, presented).await?;
    Ok(next.run(request).await)
}
