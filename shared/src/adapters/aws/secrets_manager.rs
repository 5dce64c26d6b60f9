//! Secrets from AWS Secrets Manager, named `{NEXUS_SECRETS_PREFIX}{name}`
//! (e.g. `nexus/WEBHOOK_SECRET_flickclaw_putio`), each a plain string.

use async_trait::async_trait;
use aws_sdk_secretsmanager::Client;
use secrecy::SecretString;

use crate::ports::{SecretStore, SecretsError};

pub struct SecretsManagerSecrets {
    client: Client,
    prefix: String,
}

impl SecretsManagerSecrets {
    pub fn new(client: Client, prefix: String) -> Self {
        Self { client, prefix }
    }
}

#[async_trait]
impl SecretStore for SecretsManagerSecrets {
    async fn get(&self, name: &str) -> Result<Option<SecretString>, SecretsError> {
        let id = format!("{}{name}", self.prefix);
        match self.client.get_secret_value().secret_id(&id).send().await {
            Ok(output) => {
                let value = match (output.secret_string, output.secret_binary) {
                    (Some(text), _) => Some(text),
                    (None, Some(binary)) => String::from_utf8(binary.into_inner()).ok(),
                    (None, None) => None,
                };
                Ok(value.filter(|v| !v.is_empty()).map(SecretString::from))
            }
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                Ok(None)
            }
            // The secret's name is fine to log; its value never reaches this point.
            Err(error) => Err(SecretsError {
                message: format!("reading secret {id} failed"),
                source: Some(Box::new(error)),
            }),
        }
    }
}
