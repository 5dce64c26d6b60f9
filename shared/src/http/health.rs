//! `GET /health`: a liveness probe that touches nothing.

use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::services::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route(
        "/health",
        get(|| async { Json::<Value>(json!({"status": "ok"})) }),
    )
}
