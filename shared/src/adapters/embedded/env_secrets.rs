//! Secrets from environment variables: `WEBHOOK_SECRET_flickclaw_putio=…`.

use std::collections::HashMap;

use async_trait::async_trait;
use secrecy::SecretString;

use crate::ports::{SecretStore, SecretsError};

/// The secrets among the environment variables, read once at start-up: the environment of
/// a running process does not change, and reading it takes a process-wide lock, which two
/// lookups on every request would pay for nothing.
#[derive(Debug, Default)]
pub struct EnvSecrets {
    values: HashMap<String, SecretString>,
}

/// Variable names that hold secrets.
const SECRET_PREFIXES: [&str; 2] = ["WEBHOOK_SECRET_", "NEXUS_API_KEY"];

impl EnvSecrets {
    /// Takes the secret variables of this process's environment.
    pub fn from_process_env() -> Self {
        Self::from_vars(std::env::vars_os().filter_map(|(name, value)| {
            Some((name.into_string().ok()?, value.into_string().ok()?))
        }))
    }

    /// Takes the secret variables among `vars`; empty values count as unset.
    pub fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Self {
        let values = vars
            .into_iter()
            .filter(|(name, value)| {
                !value.is_empty() && SECRET_PREFIXES.iter().any(|p| name.starts_with(p))
            })
            .map(|(name, value)| (name, SecretString::from(value)))
            .collect();
        Self { values }
    }
}

#[async_trait]
impl SecretStore for EnvSecrets {
    async fn get(&self, name: &str) -> Result<Option<SecretString>, SecretsError> {
        Ok(self.values.get(name).cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[tokio::test]
    async fn only_secret_variables_are_kept_and_empty_ones_are_unset() {
        let secrets = EnvSecrets::from_vars([
            ("WEBHOOK_SECRET_main".to_owned(), "abc".to_owned()),
            ("WEBHOOK_SECRET_open".to_owned(), String::new()),
            ("HOME".to_owned(), "/root".to_owned()),
        ]);
        let main = secrets.get("WEBHOOK_SECRET_main").await.unwrap().unwrap();
        assert_eq!(main.expose_secret(), "abc");
        assert!(secrets.get("WEBHOOK_SECRET_open").await.unwrap().is_none());
        assert!(secrets.get("HOME").await.unwrap().is_none());
    }
}
