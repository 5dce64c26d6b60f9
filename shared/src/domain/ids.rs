//! Validated identifiers that travel in URLs, keys and secret names.

use std::fmt;

use serde::Serialize;

use super::DomainError;

/// Longest accepted agent id or source.
pub const MAX_NAME_LEN: usize = 64;

/// Agent ids that would collide with the consumer API's own paths under `/api/webhook/`.
const RESERVED_AGENT_IDS: [&str; 2] = ["pending", "items"];

/// Checks the shared name rules: 1..=64 chars of `a-z`, `0-9`, `-`, `_`.
///
/// The alphabet is narrow on purpose: names become DynamoDB keys, secret names
/// (`WEBHOOK_SECRET_{agent}_{source}`) and directory names.
fn check_name(field: &'static str, value: &str) -> Result<(), DomainError> {
    if value.is_empty() {
        return Err(DomainError::new(field, "must not be empty"));
    }
    if value.len() > MAX_NAME_LEN {
        return Err(DomainError::new(
            field,
            format!("must be at most {MAX_NAME_LEN} characters"),
        ));
    }
    if !value
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
    {
        return Err(DomainError::new(
            field,
            "may only contain lowercase letters, digits, '-' and '_'",
        ));
    }
    Ok(())
}

/// The agent a webhook is addressed to (`flickclaw`, `main`…).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct AgentId(String);

impl AgentId {
    pub fn parse(value: &str) -> Result<Self, DomainError> {
        check_name("agentId", value)?;
        if RESERVED_AGENT_IDS.contains(&value) {
            return Err(DomainError::new(
                "agentId",
                format!("'{value}' is reserved by the consumer API"),
            ));
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AgentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The service that sent a webhook (`putio`, `github`…); `default` when not given.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Source(String);

impl Source {
    pub const DEFAULT: &'static str = "default";

    pub fn parse(value: &str) -> Result<Self, DomainError> {
        check_name("source", value)?;
        Ok(Self(value.to_owned()))
    }

    /// The source from an optional `?source=` parameter: absent means `default`, but an
    /// explicitly empty value is a client mistake worth reporting.
    pub fn parse_optional(value: Option<&str>) -> Result<Self, DomainError> {
        match value {
            None => Ok(Self(Self::DEFAULT.to_owned())),
            Some(value) => Self::parse(value),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_ids_accept_the_documented_alphabet() {
        for ok in ["flickclaw", "main", "agent-1", "a_b", "0"] {
            assert_eq!(AgentId::parse(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn agent_ids_refuse_anything_else() {
        for bad in ["", "Flick", "a b", "a/b", "a.b", "ä", &"x".repeat(65)] {
            assert!(AgentId::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn consumer_api_path_names_are_reserved_agent_ids() {
        assert!(AgentId::parse("pending").is_err());
        assert!(AgentId::parse("items").is_err());
    }

    #[test]
    fn a_missing_source_is_default_but_an_empty_one_is_an_error() {
        assert_eq!(Source::parse_optional(None).unwrap().as_str(), "default");
        assert!(Source::parse_optional(Some("")).is_err());
        assert_eq!(
            Source::parse_optional(Some("putio")).unwrap().as_str(),
            "putio"
        );
    }
}
