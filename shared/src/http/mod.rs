//! HTTP: one router per Lambda function, one file per resource. The same routers serve
//! API Gateway (`lambda_http::run`) and the local server (`axum::serve`).

mod auth;
mod deliveries;
pub mod error;
mod events;
mod extract;
mod health;
mod inbox;
mod ingest;
mod metrics;
mod subscriptions;
mod testing;

use std::sync::Arc;

use axum::extract::MatchedPath;
use axum::http::Request;
use axum::middleware;
use axum::Router;
use chrono::{DateTime, SecondsFormat, Utc};
use tower_http::trace::TraceLayer;

use crate::adapters::metrics::Prometheus;
use crate::services::AppState;

/// The provider-facing routes (public; each endpoint checks its own credentials).
pub fn ingest_router(state: AppState) -> Router {
    finish(ingest::router(), state)
}

/// The consumer and management API, all behind the API key.
pub fn api_router(state: AppState) -> Router {
    finish(protected_routes(&state), state)
}

/// Every route in one router, as `nexus serve` runs them, with Prometheus at `/metrics`.
pub fn local_router(state: AppState, prometheus: Arc<Prometheus>) -> Router {
    finish(
        ingest::router().merge(protected_routes(&state)),
        state.clone(),
    )
    .merge(metrics::router(state, prometheus))
}

fn protected_routes(state: &AppState) -> Router<AppState> {
    inbox::router()
        .merge(subscriptions::router())
        .merge(events::router())
        .merge(deliveries::router())
        .merge(testing::router())
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_api_key,
        ))
}

/// Adds what every router has: the health probe, JSON 404s, request spans, the state.
fn finish(routes: Router<AppState>, state: AppState) -> Router {
    routes
        .merge(health::router())
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        // Spans name the route pattern, not the URI: query strings can carry tokens.
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
                let route = request
                    .extensions()
                    .get::<MatchedPath>()
                    .map_or("unmatched", MatchedPath::as_str);
                tracing::info_span!("request", method = %request.method(), route)
            }),
        )
        .with_state(state)
}

/// Timestamps in responses: RFC 3339, UTC, milliseconds.
fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}
