//! `/api/v1/subscriptions`: the brief's subscription management.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::error::{ApiError, ApiResult};
use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::timestamp;
use crate::domain::outbound::{EventType, Subscription, SubscriptionId};
use crate::services::outbound::subscriptions::{self, NewSubscription, SubscriptionPatch};
use crate::services::outbound::testing::{test_subscription, TestResult};
use crate::services::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/subscriptions",
            post(create_subscription).get(list_subscriptions),
        )
        .route(
            "/api/v1/subscriptions/{id}",
            get(get_subscription)
                .patch(update_subscription)
                .delete(delete_subscription),
        )
        .route(
            "/api/v1/subscriptions/{id}/toggle",
            post(toggle_subscription),
        )
        .route(
            "/api/v1/subscriptions/{id}/rotate-secret",
            post(rotate_secret),
        )
        .route("/api/v1/subscriptions/{id}/test", post(test))
}

/// A subscription as every GET shows it: never with a secret.
#[derive(Serialize)]
pub struct SubscriptionOut {
    id: String,
    name: String,
    url: String,
    events: Vec<String>,
    project_filter: Option<String>,
    team_filter: Option<String>,
    severity_filter: Vec<String>,
    description: Option<String>,
    rate_limit: Option<u32>,
    active: bool,
    created_at: String,
    updated_at: String,
}

impl From<Subscription> for SubscriptionOut {
    fn from(s: Subscription) -> Self {
        Self {
            id: s.id.to_string(),
            name: s.name,
            url: s.url.as_str().to_owned(),
            events: s.events.iter().map(|e| e.as_str().to_owned()).collect(),
            project_filter: s.filters.project,
            team_filter: s.filters.team,
            severity_filter: s.filters.severities,
            description: s.description,
            rate_limit: s.rate_limit,
            active: s.active,
            created_at: timestamp(s.created_at),
            updated_at: timestamp(s.updated_at),
        }
    }
}

/// The answer to create and rotate-secret: the only times the secret is shown.
#[derive(Serialize)]
struct WithSecret {
    #[serde(flatten)]
    subscription: SubscriptionOut,
    secret: String,
    /// When the previous secret stops signing (rotation only).
    #[serde(skip_serializing_if = "Option::is_none")]
    previous_secret_expires_at: Option<String>,
}

fn with_secret(subscription: Subscription, secret: &SecretString) -> WithSecret {
    let previous: Option<DateTime<Utc>> = subscription
        .secrets
        .iter()
        .filter_map(|s| s.expires_at)
        .max();
    WithSecret {
        subscription: subscription.into(),
        secret: secret.expose_secret().to_owned(),
        previous_secret_expires_at: previous.map(timestamp),
    }
}

fn id(raw: &str) -> ApiResult<SubscriptionId> {
    Ok(SubscriptionId::parse(raw)?)
}

async fn create_subscription(
    State(state): State<AppState>,
    ApiJson(input): ApiJson<NewSubscription>,
) -> ApiResult<(StatusCode, Json<WithSecret>)> {
    let (subscription, secret) = subscriptions::create(&state, input).await?;
    Ok((
        StatusCode::CREATED,
        Json(with_secret(subscription, &secret)),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListParams {
    #[serde(default)]
    active_only: bool,
    event_type: Option<String>,
}

#[derive(Serialize)]
struct ListOut {
    subscriptions: Vec<SubscriptionOut>,
    count: usize,
}

async fn list_subscriptions(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<ListParams>,
) -> ApiResult<Json<ListOut>> {
    let event_type = params
        .event_type
        .as_deref()
        .map(EventType::parse)
        .transpose()?;
    let found = subscriptions::list(&state, params.active_only, event_type).await?;
    Ok(Json(ListOut {
        count: found.len(),
        subscriptions: found.into_iter().map(Into::into).collect(),
    }))
}

async fn get_subscription(
    State(state): State<AppState>,
    ApiPath(raw): ApiPath<String>,
) -> ApiResult<Json<SubscriptionOut>> {
    Ok(Json(subscriptions::get(&state, &id(&raw)?).await?.into()))
}

async fn update_subscription(
    State(state): State<AppState>,
    ApiPath(raw): ApiPath<String>,
    ApiJson(patch): ApiJson<SubscriptionPatch>,
) -> ApiResult<Json<SubscriptionOut>> {
    Ok(Json(
        subscriptions::update(&state, &id(&raw)?, patch)
            .await?
            .into(),
    ))
}

async fn delete_subscription(
    State(state): State<AppState>,
    ApiPath(raw): ApiPath<String>,
) -> ApiResult<StatusCode> {
    subscriptions::delete(&state, &id(&raw)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn toggle_subscription(
    State(state): State<AppState>,
    ApiPath(raw): ApiPath<String>,
) -> ApiResult<Json<SubscriptionOut>> {
    Ok(Json(
        subscriptions::toggle(&state, &id(&raw)?).await?.into(),
    ))
}

async fn rotate_secret(
    State(state): State<AppState>,
    ApiPath(raw): ApiPath<String>,
) -> ApiResult<Json<WithSecret>> {
    let (subscription, secret) = subscriptions::rotate_secret(&state, &id(&raw)?).await?;
    Ok(Json(with_secret(subscription, &secret)))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct TestParams {
    event_type: Option<String>,
}

/// The body is optional: `{"event_type": "…"}` picks the test event's type.
async fn test(
    State(state): State<AppState>,
    ApiPath(raw): ApiPath<String>,
    body: axum::body::Bytes,
) -> ApiResult<Json<TestResult>> {
    let params: TestParams = if body.is_empty() {
        TestParams::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::Malformed {
            status: StatusCode::BAD_REQUEST,
            message: format!("invalid JSON body: {e}"),
        })?
    };
    let result = test_subscription(&state, &id(&raw)?, params.event_type.as_deref()).await?;
    Ok(Json(result))
}
