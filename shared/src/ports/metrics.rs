//! Delivery metrics, as the brief names them.

/// Records what deliveries do. Prometheus text at `/metrics` locally; CloudWatch Embedded
/// Metric Format log lines on Lambda. Implementations must not block.
pub trait Metrics: Send + Sync {
    /// `nexus_webhook_deliveries_total{event_type, status}`, status `success` or `failed`
    /// (a final outcome; retries are counted apart).
    fn delivery(&self, event_type: &str, status: &str);
    /// `nexus_webhook_delivery_latency_seconds{subscriber_id}`: one attempt's latency.
    fn latency(&self, subscriber_id: &str, seconds: f64);
    /// `nexus_webhook_retries_total{event_type}`: an attempt that will be retried.
    fn retry(&self, event_type: &str);
}
