//! `GET /metrics`: Prometheus text, for the local host (Lambda emits EMF log lines instead).

use std::sync::Arc;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use super::error::ApiResult;
use crate::adapters::metrics::{Gauges, Prometheus};
use crate::services::outbound::deliveries::gauges;
use crate::services::AppState;

#[derive(Clone)]
struct MetricsState {
    app: AppState,
    prometheus: Arc<Prometheus>,
}

pub fn router(state: AppState, prometheus: Arc<Prometheus>) -> Router {
    Router::new()
        .route("/metrics", get(render))
        .with_state(MetricsState {
            app: state,
            prometheus,
        })
}

async fn render(State(state): State<MetricsState>) -> ApiResult<impl IntoResponse> {
    let (active_subscriptions, queue_size) = gauges(&state.app).await?;
    let text = state.prometheus.render(&Gauges {
        active_subscriptions,
        queue_size,
    });
    Ok(([(CONTENT_TYPE, "text/plain; version=0.0.4")], text))
}
