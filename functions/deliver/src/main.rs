//! Lambda: SQS delivery queue → one signed delivery per message, partial batch failures.
//! Wiring only: the batch logic lives in `nexus_shared::lambda::handle_sqs_batch`.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use nexus_shared::adapters::aws;
use nexus_shared::config::Config;
use nexus_shared::{lambda, telemetry};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init_lambda();
    let config = Config::from_env()?;
    let sdk = aws::load_sdk_config().await;
    let state = aws::app_state(&sdk, config)?;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let state = state.clone();
        async move {
            Ok::<SqsBatchResponse, Error>(lambda::handle_sqs_batch(&state, event.payload).await)
        }
    }))
    .await
}
