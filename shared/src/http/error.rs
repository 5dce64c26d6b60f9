//! The one place errors become HTTP responses: `{"error": {"code", "message"}}`.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::services::ServiceError;

/// An error on its way to the client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Service(#[from] ServiceError),
    /// A request the HTTP layer could not read (bad JSON body, bad query string).
    #[error("{message}")]
    Malformed { status: StatusCode, message: String },
    #[error("no route for this path")]
    NotFound,
    #[error("this path does not accept this method")]
    MethodNotAllowed,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    fn parts(&self) -> (StatusCode, &'static str) {
        use ServiceError as S;
        match self {
            Self::Service(error) => match error {
                S::Invalid(_) | S::BadRequest(_) => (StatusCode::BAD_REQUEST, "invalid_request"),
                S::InvalidJson(_) => (StatusCode::BAD_REQUEST, "invalid_json"),
                S::Unauthorized(_) | S::Verification(_) => {
                    (StatusCode::UNAUTHORIZED, "unauthorized")
                }
                S::PayloadTooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
                S::NotConfigured(_) => (StatusCode::SERVICE_UNAVAILABLE, "not_configured"),
                S::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
                S::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
                S::Store(_) | S::Secrets(_) | S::Queue(_) | S::Verifier { .. } => {
                    (StatusCode::INTERNAL_SERVER_ERROR, "internal")
                }
            },
            Self::Malformed { status, .. } => (*status, "invalid_request"),
            Self::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            Self::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.parts();
        let message = if status.is_server_error() && code == "internal" {
            // Infrastructure failures are logged with their cause chain and answered
            // opaquely: the client cannot act on them and they may name internals.
            tracing::error!(error = %crate::telemetry::error_chain(&self), "request failed");
            "internal error; nothing was changed, retry later".to_owned()
        } else {
            if status.is_server_error() {
                tracing::error!(error = %self, "request refused");
            }
            self.to_string()
        };
        let body = Json(json!({ "error": { "code": code, "message": message } }));
        (status, body).into_response()
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        Self::Malformed {
            status: rejection.status(),
            message: rejection.body_text(),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        Self::Malformed {
            status: StatusCode::BAD_REQUEST,
            message: rejection.body_text(),
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        Self::Malformed {
            status: StatusCode::BAD_REQUEST,
            message: rejection.body_text(),
        }
    }
}

impl From<crate::domain::DomainError> for ApiError {
    fn from(error: crate::domain::DomainError) -> Self {
        Self::Service(error.into())
    }
}

/// The fallback for unknown routes, so even a 404 is our JSON shape.
pub async fn not_found() -> ApiError {
    ApiError::NotFound
}

/// The fallback for a known path with the wrong method.
pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::StoreError;

    async fn body_of(error: ApiError) -> (StatusCode, serde_json::Value) {
        let response = error.into_response();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 4096)
            .await
            .unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn client_errors_say_what_was_wrong() {
        let (status, body) = body_of(ServiceError::PayloadTooLarge { limit: 10 }.into()).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(body["error"]["code"], "payload_too_large");
        assert!(body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("10 bytes"));
    }

    #[tokio::test]
    async fn infrastructure_errors_are_opaque() {
        let error = StoreError::Corrupt("table nexus-secret-internals".into());
        let (status, body) = body_of(ServiceError::Store(error).into()).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body["error"]["code"], "internal");
        assert!(!body.to_string().contains("nexus-secret-internals"));
    }
}
