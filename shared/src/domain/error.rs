//! The domain's one error type: input that does not parse into a domain value.

/// Input that cannot become a domain value. Always the client's fault (HTTP 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {field}: {reason}")]
pub struct DomainError {
    /// Which input was wrong, as the client named it (`agentId`, `source`, `cursor`…).
    pub field: &'static str,
    /// What was wrong with it, safe to show to the client.
    pub reason: String,
}

impl DomainError {
    pub fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self {
            field,
            reason: reason.into(),
        }
    }
}
