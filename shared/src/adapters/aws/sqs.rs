//! The delivery queue on SQS, with its dead-letter queue.
//!
//! On Lambda the event source mapping receives and deletes; this adapter sends (publish,
//! manual retry), changes visibility (retry backoff), dead-letters, and receives for hosts
//! that poll the queue themselves.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::types::{
    MessageSystemAttributeName, QueueAttributeName, SendMessageBatchRequestEntry,
};
use aws_sdk_sqs::Client;

use crate::ports::queue::{DeliveryQueue, QueueError, QueueMessage, Received};

/// SQS's longest message delay.
const MAX_DELAY: Duration = Duration::from_secs(15 * 60);
/// SQS's longest visibility timeout.
const MAX_VISIBILITY: Duration = Duration::from_secs(12 * 3600);
/// SQS's most messages per receive, and per batch send.
const MAX_BATCH: usize = 10;

pub struct SqsQueue {
    client: Client,
    queue_url: String,
    dlq_url: String,
}

impl SqsQueue {
    pub fn new(client: Client, queue_url: String, dlq_url: String) -> Self {
        Self {
            client,
            queue_url,
            dlq_url,
        }
    }

    async fn send_to(
        &self,
        url: &str,
        message: &QueueMessage,
        delay: Duration,
    ) -> Result<(), QueueError> {
        let body = serde_json::to_string(message).map_err(QueueError::new)?;
        self.client
            .send_message()
            .queue_url(url)
            .message_body(body)
            .delay_seconds(seconds(delay, MAX_DELAY))
            .send()
            .await
            .map_err(QueueError::new)?;
        Ok(())
    }
}

/// Whole seconds, rounded up (a retry never comes early) and capped at SQS's `max`.
fn seconds(duration: Duration, max: Duration) -> i32 {
    let secs =
        duration.min(max).as_secs() + u64::from(duration.subsec_nanos() > 0 && duration < max);
    i32::try_from(secs).unwrap_or(i32::MAX)
}

#[async_trait]
impl DeliveryQueue for SqsQueue {
    async fn send(&self, message: &QueueMessage, delay: Duration) -> Result<(), QueueError> {
        self.send_to(&self.queue_url, message, delay).await
    }

    /// Batches of ten, sent concurrently: a publish to fifty subscriptions waits for one
    /// round trip, not fifty.
    async fn send_batch(
        &self,
        messages: &[QueueMessage],
        delay: Duration,
    ) -> Result<(), QueueError> {
        let delay = seconds(delay, MAX_DELAY);
        let batches = messages.chunks(MAX_BATCH).map(|batch| async move {
            let mut request = self.client.send_message_batch().queue_url(&self.queue_url);
            for (index, message) in batch.iter().enumerate() {
                let body = serde_json::to_string(message).map_err(QueueError::new)?;
                let entry = SendMessageBatchRequestEntry::builder()
                    .id(index.to_string())
                    .message_body(body)
                    .delay_seconds(delay)
                    .build()
                    .map_err(QueueError::new)?;
                request = request.entries(entry);
            }
            let output = request.send().await.map_err(QueueError::new)?;
            match output.failed().first() {
                None => Ok(()),
                Some(failure) => Err(QueueError::new(BatchFailure {
                    failed: output.failed().len(),
                    code: failure.code().to_owned(),
                    message: failure.message().unwrap_or_default().to_owned(),
                })),
            }
        });
        futures::future::try_join_all(batches).await?;
        Ok(())
    }

    async fn receive(&self, max: usize, visibility: Duration) -> Result<Vec<Received>, QueueError> {
        let output = self
            .client
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(i32::try_from(max.clamp(1, MAX_BATCH)).unwrap_or(1))
            .visibility_timeout(seconds(visibility, MAX_VISIBILITY))
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(QueueError::new)?;
        let mut received = Vec::new();
        for message in output.messages.unwrap_or_default() {
            let (Some(body), Some(handle)) = (message.body(), message.receipt_handle()) else {
                continue;
            };
            let Ok(parsed) = serde_json::from_str::<QueueMessage>(body) else {
                // Left invisible: after the redrive policy's receives it moves to the DLQ.
                tracing::warn!(message_id = ?message.message_id(), "unreadable queue message");
                continue;
            };
            let receive_count = message
                .attributes()
                .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                .and_then(|n| n.parse().ok())
                .unwrap_or(1);
            received.push(Received {
                message: parsed,
                handle: handle.to_owned(),
                receive_count,
            });
        }
        Ok(received)
    }

    /// SQS counts delays and visibility in whole seconds (rounded up here), and a message
    /// that became visible reaches the consumer on its poller's next receive.
    fn delay_resolution(&self) -> Duration {
        Duration::from_secs(2)
    }

    async fn retry_in(&self, handle: &str, delay: Duration) -> Result<(), QueueError> {
        self.client
            .change_message_visibility()
            .queue_url(&self.queue_url)
            .receipt_handle(handle)
            .visibility_timeout(seconds(delay, MAX_VISIBILITY))
            .send()
            .await
            .map_err(QueueError::new)?;
        Ok(())
    }

    async fn delete(&self, handle: &str) -> Result<(), QueueError> {
        self.client
            .delete_message()
            .queue_url(&self.queue_url)
            .receipt_handle(handle)
            .send()
            .await
            .map_err(QueueError::new)?;
        Ok(())
    }

    /// Copies the message to the DLQ, then deletes it here: a crash in between leaves a
    /// copy in both, never in neither.
    async fn dead_letter(&self, received: &Received) -> Result<(), QueueError> {
        self.send_to(&self.dlq_url, &received.message, Duration::ZERO)
            .await?;
        self.delete(&received.handle).await
    }

    async fn approximate_size(&self) -> Result<u64, QueueError> {
        let counts = [
            QueueAttributeName::ApproximateNumberOfMessages,
            QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
            QueueAttributeName::ApproximateNumberOfMessagesDelayed,
        ];
        let output = self
            .client
            .get_queue_attributes()
            .queue_url(&self.queue_url)
            .set_attribute_names(Some(counts.to_vec()))
            .send()
            .await
            .map_err(QueueError::new)?;
        let attributes = output.attributes.unwrap_or_default();
        Ok(counts
            .iter()
            .filter_map(|name| attributes.get(name)?.parse::<u64>().ok())
            .sum())
    }
}

/// Entries of a batch send that SQS refused.
#[derive(Debug, thiserror::Error)]
#[error("SQS refused {failed} message(s) of a batch send: {code}: {message}")]
struct BatchFailure {
    failed: usize,
    code: String,
    message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_round_up_to_whole_seconds_within_the_sqs_limit() {
        assert_eq!(seconds(Duration::ZERO, MAX_DELAY), 0);
        assert_eq!(seconds(Duration::from_millis(1), MAX_DELAY), 1);
        assert_eq!(seconds(Duration::from_millis(2_500), MAX_DELAY), 3);
        assert_eq!(seconds(Duration::from_secs(900), MAX_DELAY), 900);
        assert_eq!(seconds(Duration::from_secs(3_600), MAX_DELAY), 900);
        assert_eq!(seconds(Duration::from_secs(86_400), MAX_VISIBILITY), 43_200);
    }
}
