//! Lambda: API Gateway HTTP API → the provider-facing ingest routes (public, write-only).
//! Wiring only: the routes live in `nexus_shared::http`.

use nexus_shared::adapters::aws;
use nexus_shared::config::Config;
use nexus_shared::{http, telemetry};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    telemetry::init_lambda();
    let config = Config::from_env()?;
    let sdk = aws::load_sdk_config().await;
    let state = aws::app_state(&sdk, config)?;
    lambda_http::run(http::ingest_router(state)).await
}
