//! Lambda: EventBridge schedule → re-enqueue deliveries a publish stored but never queued.
//! Wiring only: the sweep lives in `nexus_shared::lambda::handle_schedule`, which logs how
//! many it re-enqueued.

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use nexus_shared::adapters::aws;
use nexus_shared::config::Config;
use nexus_shared::lambda::{self, SweepOutput};
use nexus_shared::telemetry;

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init_lambda();
    let config = Config::from_env()?;
    let sdk = aws::load_sdk_config().await;
    let state = aws::app_state(&sdk, config)?;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<EventBridgeEvent>| {
        let state = state.clone();
        async move { Ok::<SweepOutput, Error>(lambda::handle_schedule(&state, event.payload).await?) }
    }))
    .await
}
