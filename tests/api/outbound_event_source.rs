//! Lambda's SQS event source, emulated for the AWS backend of the behaviour suite: receive
//! from the delivery queue, hand each batch to the deliver Lambda's handler
//! (`nexus_shared::lambda::handle_sqs_batch`) as the JSON event Lambda sends, and delete
//! every message the response does not report as failed. So the AWS backend delivers
//! through the real handler path, on SQS and DynamoDB in moto.

use std::sync::Arc;

use aws_config::SdkConfig;
use aws_lambda_events::event::sqs::SqsEvent;
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, MessageSystemAttributeName};
use nexus_shared::lambda::handle_sqs_batch;
use nexus_shared::services::AppState;
use serde_json::json;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// Batches in flight at once: Lambda runs several invocations side by side, so one slow
/// subscriber does not hold up every other delivery.
const CONCURRENT_BATCHES: usize = 4;
/// SQS's largest receive, the event source mapping's default batch size.
const BATCH_SIZE: i32 = 10;

/// Polls `queue_url` until the task is dropped (aborted with the app).
pub async fn run(sdk: SdkConfig, state: AppState, queue_url: String) {
    let client = aws_sdk_sqs::Client::new(&sdk);
    let slots = Arc::new(Semaphore::new(CONCURRENT_BATCHES));
    // Dropping the set (when this task is aborted) aborts every batch in flight.
    let mut batches = JoinSet::new();
    loop {
        let slot = slots.clone().acquire_owned().await.expect("never closed");
        while batches.try_join_next().is_some() {}
        let received = client
            .receive_message()
            .queue_url(&queue_url)
            .max_number_of_messages(BATCH_SIZE)
            .wait_time_seconds(1)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await;
        let messages = match received {
            Ok(output) => output.messages.unwrap_or_default(),
            Err(error) => {
                eprintln!("event source: receiving failed: {error:?}");
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                continue;
            }
        };
        if messages.is_empty() {
            continue;
        }
        let (client, state, queue_url) = (client.clone(), state.clone(), queue_url.clone());
        batches.spawn(async move {
            invoke(&client, &state, &queue_url, messages).await;
            drop(slot);
        });
    }
}

/// One Lambda invocation: the event as Lambda serializes it, the handler, the deletes.
async fn invoke(
    client: &aws_sdk_sqs::Client,
    state: &AppState,
    queue_url: &str,
    messages: Vec<aws_sdk_sqs::types::Message>,
) {
    let records: Vec<_> = messages
        .iter()
        .map(|m| {
            let attributes: serde_json::Map<String, serde_json::Value> = m
                .attributes()
                .into_iter()
                .flatten()
                .map(|(name, value)| (name.as_str().to_owned(), json!(value)))
                .collect();
            json!({
                "messageId": m.message_id(),
                "receiptHandle": m.receipt_handle(),
                "body": m.body(),
                "md5OfBody": m.md5_of_body(),
                "attributes": attributes,
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:deliveries",
                "awsRegion": "us-east-1",
            })
        })
        .collect();
    let event: SqsEvent =
        serde_json::from_value(json!({ "Records": records })).expect("an SQS event");
    let response = handle_sqs_batch(state, event).await;
    let failed: Vec<&str> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    let done: Vec<DeleteMessageBatchRequestEntry> = messages
        .iter()
        .filter(|m| !failed.contains(&m.message_id().unwrap_or_default()))
        .enumerate()
        .map(|(n, m)| {
            DeleteMessageBatchRequestEntry::builder()
                .id(n.to_string())
                .receipt_handle(m.receipt_handle().unwrap_or_default())
                .build()
                .expect("id and receipt handle are set")
        })
        .collect();
    if done.is_empty() {
        return;
    }
    // A message the handler moved to the DLQ itself is already deleted; that entry's
    // failure is expected, as it is for Lambda.
    if let Err(error) = client
        .delete_message_batch()
        .queue_url(queue_url)
        .set_entries(Some(done))
        .send()
        .await
    {
        eprintln!("event source: deleting a batch failed: {error:?}");
    }
}
