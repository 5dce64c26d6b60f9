//! The AWS backend for the Lambdas: DynamoDB (inbox and outbound tables), SQS (the
//! delivery queue and its DLQ) and Secrets Manager.

mod dynamodb;
mod outbound;
mod outbound_attrs;
mod outbound_counts;
mod outbound_list;
mod outbound_writes;
mod secrets_manager;
mod sqs;

use std::sync::Arc;

use aws_config::{BehaviorVersion, SdkConfig};

use super::cached_secrets::CachedSecrets;
use super::http_client::HyperClient;
use super::metrics::EmbeddedMetricFormat;
use crate::config::{Config, ConfigError};
use crate::ports::clock::SystemClock;
use crate::services::{AppState, Wiring};

pub use dynamodb::DynamoStore;
pub use outbound::DynamoOutbound;
pub use outbound_list::{
    INDEX_BY_STATUS, INDEX_BY_SUBSCRIPTION, INDEX_BY_SUBSCRIPTION_STATUS, INDEX_NEWEST,
};
pub use secrets_manager::SecretsManagerSecrets;
pub use sqs::SqsQueue;

/// Loads the AWS SDK configuration the standard way (Lambda's role credentials, region and
/// `AWS_ENDPOINT_URL`, which is how tests point it at a local server).
pub async fn load_sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest()).load().await
}

/// Wires the AWS adapters into the state every router and handler uses. The delivery
/// queue and its DLQ (`NEXUS_QUEUE_URL`, `NEXUS_DLQ_URL`) are required.
pub fn app_state(sdk: &SdkConfig, config: Config) -> Result<AppState, ConfigError> {
    config.validate_for_aws()?;
    let required = |name: &'static str, value: &Option<String>| {
        value.clone().ok_or_else(|| ConfigError {
            name,
            reason: "must be set to the SQS queue URL on AWS".to_owned(),
        })
    };
    let queue = SqsQueue::new(
        aws_sdk_sqs::Client::new(sdk),
        required("NEXUS_QUEUE_URL", &config.outbound.queue_url)?,
        required("NEXUS_DLQ_URL", &config.outbound.dlq_url)?,
    );
    let dynamodb = aws_sdk_dynamodb::Client::new(sdk);
    let outbound = DynamoOutbound::new(
        dynamodb.clone(),
        config.outbound.table.clone(),
        // Idempotency keys are remembered as long as inbound delivery ids.
        config.dedupe_window,
    );
    let secrets = SecretsManagerSecrets::new(
        aws_sdk_secretsmanager::Client::new(sdk),
        config.secrets_prefix.clone(),
    );
    Ok(AppState::new(Wiring {
        store: Arc::new(DynamoStore::new(dynamodb, config.table.clone())),
        secrets: Arc::new(CachedSecrets::new(
            Arc::new(secrets),
            config.secrets_cache_ttl,
        )),
        clock: Arc::new(SystemClock),
        outbound: Arc::new(outbound),
        queue: Arc::new(queue),
        http: Arc::new(HyperClient::new(
            config.outbound.allow_private_targets,
            config.outbound.concurrency,
        )),
        metrics: Arc::new(EmbeddedMetricFormat),
        config: Arc::new(config),
    }))
}
