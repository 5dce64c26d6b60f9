//! `POST /api/webhook/{agentId}?source=…`: the public, write-only ingestion endpoint.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde::Deserialize;

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

/// The receipt as JSON text: `{"id", "received_at", "duplicate"}`. Written by hand rather
/// than through serde because it goes out on every ingested request, and this way it costs
/// one allocation. Nothing in it needs escaping: agent ids are `[a-z0-9_-]`, row keys digits,
/// `_` and Crockford base32, the timestamp RFC 3339.
struct ReceiptOut(String);

impl From<Receipt> for ReceiptOut {
    fn from(receipt: Receipt) -> Self {
        let received_at = super::timestamp(receipt.received_at);
        let (agent, row_key) = (receipt.id.agent.as_str(), receipt.id.row_key.as_str());
        let mut json = String::with_capacity(64 + agent.len() + row_key.len());
        json.push_str(r#"{"id":""#);
        json.push_str(agent);
        json.push(':');
        json.push_str(row_key);
        json.push_str(r#"","received_at":""#);
        json.push_str(&received_at);
        json.push_str(r#"","duplicate":"#);
        json.push_str(if receipt.duplicate { "true}" } else { "false}" });
        Self(json)
    }
}

impl IntoResponse for ReceiptOut {
    fn into_response(self) -> Response {
        let content_type = HeaderValue::from_static(mime::APPLICATION_JSON.as_ref());
        ([(header::CONTENT_TYPE, content_type)], self.0).into_response()
    }
}

async fn receive_webhook(
    State(state): State<AppState>,
    ApiPath(IngestPath { agent_id }): ApiPath<IngestPath>,
    ApiQuery(params): ApiQuery<IngestParams>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<ReceiptOut> {
    let agent = AgentId::parse(&agent_id)?;
    let source = Source::parse_optional(params.source.as_deref())?;
    let body = read_body(body, state.config.max_body_bytes).await?;
    let url = public_url(state.config.public_url.as_deref(), &headers, &uri);
    let receipt = ingest(
        &state,
        IngestRequest {
            agent,
            source,
            headers,
            body,
            url,
        },
    )
    .await?;
    Ok(receipt.into())
}

/// The URL as the provider called it. Behind API Gateway or a proxy the request line holds
/// only the path, so scheme and host come from `X-Forwarded-Proto` and `Host`, unless
/// `NEXUS_PUBLIC_URL` says better.
fn public_url(configured: Option<&str>, headers: &HeaderMap, uri: &Uri) -> String {
    let path_and_query = uri.path_and_query().map_or("/", |p| p.as_str());
    if let Some(base) = configured {
        return format!("{base}{path_and_query}");
    }
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(str::trim)
    };
    let scheme = header("x-forwarded-proto")
        .or(uri.scheme_str())
        .unwrap_or("http");
    let host = header("host")
        .or(uri.authority().map(|a| a.as_str()))
        .unwrap_or("localhost");
    format!("{scheme}://{host}{path_and_query}")
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::item::ItemId;

    #[test]
    fn the_receipt_is_the_json_serde_would_write() {
        let received_at = chrono::DateTime::from_timestamp_millis(1_763_871_423_123).unwrap();
        for duplicate in [false, true] {
            let receipt = Receipt {
                id: ItemId::new(AgentId::parse("flick-claw_2").unwrap(), received_at),
                received_at,
                duplicate,
            };
            let expected = serde_json::json!({
                "id": receipt.id.to_string(),
                "received_at": "2025-11-23T04:17:03.123Z",
                "duplicate": duplicate,
            });
            let ReceiptOut(json) = receipt.into();
            let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
            assert_eq!(parsed, expected);
        }
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (k.parse().unwrap(), v.parse().unwrap()))
            .collect()
    }

    #[test]
    fn the_public_url_comes_from_forwarded_headers_behind_a_gateway() {
        let uri: Uri = "/api/webhook/main?source=twilio".parse().unwrap();
        let forwarded = headers(&[
            ("host", "abc.execute-api.eu-west-1.amazonaws.com"),
            ("x-forwarded-proto", "https"),
        ]);
        assert_eq!(
            public_url(None, &forwarded, &uri),
            "https://abc.execute-api.eu-west-1.amazonaws.com/api/webhook/main?source=twilio"
        );
        assert_eq!(
            public_url(None, &headers(&[("host", "127.0.0.1:8080")]), &uri),
            "http://127.0.0.1:8080/api/webhook/main?source=twilio"
        );
    }

    #[test]
    fn a_configured_public_url_wins() {
        let uri: Uri = "/api/webhook/main?source=twilio".parse().unwrap();
        assert_eq!(
            public_url(
                Some("https://hooks.example.com"),
                &headers(&[("host", "internal:8080")]),
                &uri
            ),
            "https://hooks.example.com/api/webhook/main?source=twilio"
        );
    }
}
