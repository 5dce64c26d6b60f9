//! The event logic of the Lambdas that are not HTTP: deliver (an SQS batch in, the failed
//! message ids out, `ReportBatchItemFailures`) and sweep (a schedule in, the stranded
//! deliveries re-enqueued). `functions/deliver` and `functions/sweep` only wire them to the
//! runtime, so tests call them directly.

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use serde::Serialize;
use tracing::Instrument;

use crate::ports::queue::{QueueMessage, Received};
use crate::services::outbound::deliver::{deliver_one, Disposition};
use crate::services::outbound::sweep::requeue_stranded;
use crate::services::{AppState, ServiceResult};
use crate::telemetry::error_chain;

/// Delivers every message of the batch concurrently, one span each, and settles it:
/// - delivered, or nothing left to do: success (Lambda deletes it);
/// - to be retried after a delay: its visibility is set to the delay and it is reported
///   failed, so Lambda leaves it in the queue and it comes back when due;
/// - out of retries: moved to the dead-letter queue, then success;
/// - unreadable, or the step failed: reported failed; it comes back after the visibility
///   timeout, and the redrive policy moves it to the DLQ after `maxReceiveCount` receives.
pub async fn handle_sqs_batch(state: &AppState, event: SqsEvent) -> SqsBatchResponse {
    let work = event.records.into_iter().map(|record| {
        let span = tracing::info_span!(
            "sqs_message",
            message_id = record.message_id.as_deref().unwrap_or("-"),
            receive_count = receive_count(&record),
        );
        async move {
            let id = record.message_id.clone();
            (id, settle(state, record).await)
        }
        .instrument(span)
    });
    let mut response = SqsBatchResponse::default();
    for (id, settled) in futures::future::join_all(work).await {
        match (settled, id) {
            (Settled::Done, _) => {}
            (Settled::Failed, Some(id)) => response.add_failure(id),
            (Settled::Failed, None) => {
                tracing::error!("a failed SQS record has no message id; it cannot be reported")
            }
        }
    }
    response
}

enum Settled {
    Done,
    Failed,
}

fn receive_count(record: &SqsMessage) -> u32 {
    record
        .attributes
        .get("ApproximateReceiveCount")
        .and_then(|n| n.parse().ok())
        .unwrap_or(1)
}

async fn settle(state: &AppState, record: SqsMessage) -> Settled {
    let parsed = record
        .body
        .as_deref()
        .map(serde_json::from_str::<QueueMessage>);
    let (Some(Ok(message)), Some(handle)) = (parsed, record.receipt_handle.clone()) else {
        // Not ours to read: retrying cannot help, the redrive policy will move it to the DLQ.
        tracing::error!("unreadable SQS message; leaving it to the dead-letter queue");
        return Settled::Failed;
    };
    let outcome = match deliver_one(state, &message).await {
        Ok(Disposition::Delete) => return Settled::Done,
        Ok(Disposition::RetryIn(delay)) => state.queue.retry_in(&handle, delay).await.map(|()| {
            tracing::info!(
                delay_ms = delay.as_millis() as u64,
                "delivery retried later"
            );
            Settled::Failed
        }),
        Ok(Disposition::DeadLetter) => {
            let received = Received {
                message,
                handle,
                receive_count: receive_count(&record),
            };
            state
                .queue
                .dead_letter(&received)
                .await
                .map(|()| Settled::Done)
        }
        Err(error) => {
            tracing::error!(error = %error_chain(&error), "delivering a message failed");
            return Settled::Failed;
        }
    };
    outcome.unwrap_or_else(|error| {
        tracing::error!(error = %error_chain(&error), "settling a queue message failed");
        Settled::Failed
    })
}

/// What the sweep Lambda answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SweepOutput {
    /// Stranded deliveries sent to the queue again.
    pub requeued: usize,
}

/// Sweeps for stranded deliveries on a scheduled event, as of the state's clock rather than
/// the event's `time`: a late or retried invocation sweeps what is stranded by then. Any
/// found are a warning: an SQS send failed after a publish was stored.
pub async fn handle_schedule(
    state: &AppState,
    event: EventBridgeEvent,
) -> ServiceResult<SweepOutput> {
    let span = tracing::info_span!(
        "sweep",
        event_id = event.id.as_deref().unwrap_or("-"),
        scheduled_at = ?event.time,
    );
    async move {
        let swept = requeue_stranded(state, state.clock.now()).await;
        match &swept {
            Ok(0) => tracing::info!("no stranded deliveries"),
            Ok(requeued) => {
                tracing::warn!(requeued, "re-enqueued deliveries that never reached the queue")
            }
            Err(error) => {
                tracing::error!(error = %error_chain(error), "sweeping for stranded deliveries failed")
            }
        }
        swept.map(|requeued| SweepOutput { requeued })
    }
    .instrument(span)
    .await
}
