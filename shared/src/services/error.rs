//! The service layer's error type. `http::error` maps it to statuses in one place.

use crate::domain::verify::{ConfigError as VerifierConfigError, VerifyError};
use crate::domain::DomainError;
use crate::ports::queue::QueueError;
use crate::ports::{SecretsError, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// Input that does not parse into a domain value.
    #[error(transparent)]
    Invalid(#[from] DomainError),
    /// A well-formed request the service refuses (too many ids, a limit out of range).
    #[error("{0}")]
    BadRequest(String),
    /// Missing or wrong credentials; the message says which, never what was expected.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// The request is not signed the way its endpoint's verifier requires.
    #[error(transparent)]
    Verification(#[from] VerifyError),
    /// A stored verifier config cannot be used: the operator's mistake. The sender gets an
    /// opaque 500 and should retry once it is fixed; the log names the secret.
    #[error("secret {name} holds an unusable verifier")]
    Verifier {
        name: String,
        #[source]
        error: VerifierConfigError,
    },
    #[error("body is larger than the limit of {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("body declares JSON but is not valid JSON: {0}")]
    InvalidJson(String),
    /// No such resource (`subscription`, `delivery`).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The request conflicts with the resource's state.
    #[error("{0}")]
    Conflict(&'static str),
    /// The deployment lacks something it needs (e.g. an API key).
    #[error("{0}")]
    NotConfigured(&'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Secrets(#[from] SecretsError),
    #[error(transparent)]
    Queue(#[from] QueueError),
}

pub type ServiceResult<T> = Result<T, ServiceError>;
