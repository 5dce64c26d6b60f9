//! The AWS backend for the Lambdas: DynamoDB and Secrets Manager.

mod dynamodb;
mod secrets_manager;

use std::sync::Arc;

use aws_config::{BehaviorVersion, SdkConfig};

use super::cached_secrets::CachedSecrets;
use crate::config::{Config, ConfigError};
use crate::ports::clock::SystemClock;
use crate::services::AppState;

pub use dynamodb::DynamoStore;
pub use secrets_manager::SecretsManagerSecrets;

/// Loads the AWS SDK configuration the standard way (Lambda's role credentials, region and
/// `AWS_ENDPOINT_URL`, which is how tests point it at a local server).
pub async fn load_sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest()).load().await
}

/// Wires the AWS adapters into the state every router and handler uses.
pub fn app_state(sdk: &SdkConfig, config: Config) -> Result<AppState, ConfigError> {
    config.validate_for_aws()?;
    let secrets = SecretsManagerSecrets::new(
        aws_sdk_secretsmanager::Client::new(sdk),
        config.secrets_prefix.clone(),
    );
    Ok(AppState {
        store: Arc::new(DynamoStore::new(
            aws_sdk_dynamodb::Client::new(sdk),
            config.table.clone(),
        )),
        secrets: Arc::new(CachedSecrets::new(
            Arc::new(secrets),
            config.secrets_cache_ttl,
        )),
        clock: Arc::new(SystemClock),
        config: Arc::new(config),
    })
}
