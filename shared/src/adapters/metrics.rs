//! Metrics sinks: Prometheus text for `nexus serve`, CloudWatch Embedded Metric Format log
//! lines for Lambda.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

use crate::ports::metrics::Metrics;

/// Latency histogram bucket bounds, in seconds.
const BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Default)]
struct Registry {
    deliveries: BTreeMap<(String, String), u64>,
    retries: BTreeMap<String, u64>,
    latency: BTreeMap<String, Histogram>,
}

/// In-process counters rendered in the Prometheus text format.
#[derive(Default)]
pub struct Prometheus {
    registry: Mutex<Registry>,
}

/// Gauges read at scrape time rather than counted.
pub struct Gauges {
    /// Active subscriptions per event pattern.
    pub active_subscriptions: BTreeMap<String, u64>,
    pub queue_size: u64,
}

impl Prometheus {
    /// The exposition text: the brief's metric names and labels.
    pub fn render(&self, gauges: &Gauges) -> String {
        let registry = self.registry.lock().expect("metrics lock poisoned");
        let mut out = String::new();
        out.push_str("# HELP nexus_webhook_deliveries_total Deliveries by final outcome.\n");
        out.push_str("# TYPE nexus_webhook_deliveries_total counter\n");
        for ((event_type, status), n) in &registry.deliveries {
            let _ = writeln!(
                out,
                "nexus_webhook_deliveries_total{{event_type=\"{}\",status=\"{}\"}} {n}",
                escape(event_type),
                escape(status)
            );
        }
        out.push_str("# HELP nexus_webhook_delivery_latency_seconds Latency of one attempt.\n");
        out.push_str("# TYPE nexus_webhook_delivery_latency_seconds histogram\n");
        for (subscriber, h) in &registry.latency {
            let label = escape(subscriber);
            let mut cumulative = 0;
            for (bound, count) in BUCKETS.iter().zip(h.counts) {
                cumulative += count;
                let _ = writeln!(
                    out,
                    "nexus_webhook_delivery_latency_seconds_bucket{{subscriber_id=\"{label}\",le=\"{bound}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "nexus_webhook_delivery_latency_seconds_bucket{{subscriber_id=\"{label}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "nexus_webhook_delivery_latency_seconds_sum{{subscriber_id=\"{label}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "nexus_webhook_delivery_latency_seconds_count{{subscriber_id=\"{label}\"}} {}",
                h.count
            );
        }
        out.push_str("# HELP nexus_webhook_retries_total Attempts that will be retried.\n");
        out.push_str("# TYPE nexus_webhook_retries_total counter\n");
        for (event_type, n) in &registry.retries {
            let _ = writeln!(
                out,
                "nexus_webhook_retries_total{{event_type=\"{}\"}} {n}",
                escape(event_type)
            );
        }
        out.push_str(
            "# HELP nexus_webhook_active_subscriptions Active subscriptions per event type.\n",
        );
        out.push_str("# TYPE nexus_webhook_active_subscriptions gauge\n");
        for (event_type, n) in &gauges.active_subscriptions {
            let _ = writeln!(
                out,
                "nexus_webhook_active_subscriptions{{event_type=\"{}\"}} {n}",
                escape(event_type)
            );
        }
        out.push_str("# HELP nexus_webhook_queue_size Messages waiting in the delivery queue.\n");
        out.push_str("# TYPE nexus_webhook_queue_size gauge\n");
        let _ = writeln!(out, "nexus_webhook_queue_size {}", gauges.queue_size);
        out
    }
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics for Prometheus {
    fn delivery(&self, event_type: &str, status: &str) {
        let mut registry = self.registry.lock().expect("metrics lock poisoned");
        *registry
            .deliveries
            .entry((event_type.to_owned(), status.to_owned()))
            .or_default() += 1;
    }

    fn latency(&self, subscriber_id: &str, seconds: f64) {
        let mut registry = self.registry.lock().expect("metrics lock poisoned");
        let h = registry
            .latency
            .entry(subscriber_id.to_owned())
            .or_default();
        for (bound, count) in BUCKETS.iter().zip(h.counts.iter_mut()) {
            if seconds <= *bound {
                *count += 1;
                break;
            }
        }
        h.count += 1;
        h.sum += seconds;
    }

    fn retry(&self, event_type: &str) {
        let mut registry = self.registry.lock().expect("metrics lock poisoned");
        *registry.retries.entry(event_type.to_owned()).or_default() += 1;
    }
}

/// CloudWatch Embedded Metric Format: one JSON log line per observation, which CloudWatch
/// turns into metrics with the same names and dimensions, no API calls needed.
#[derive(Default)]
pub struct EmbeddedMetricFormat;

impl EmbeddedMetricFormat {
    fn emit(&self, metric: &str, unit: &str, value: f64, dimensions: &[(&str, &str)]) {
        let names: Vec<&str> = dimensions.iter().map(|(k, _)| *k).collect();
        let mut line = serde_json::json!({
            "_aws": {
                "Timestamp": chrono::Utc::now().timestamp_millis(),
                "CloudWatchMetrics": [{
                    "Namespace": "NexusWebhooks",
                    "Dimensions": [names],
                    "Metrics": [{"Name": metric, "Unit": unit}],
                }],
            },
            metric: value,
        });
        for (key, value) in dimensions {
            line[*key] = serde_json::Value::String((*value).to_owned());
        }
        // EMF is read from the function's stdout, one object per line.
        println!("{line}");
    }
}

impl Metrics for EmbeddedMetricFormat {
    fn delivery(&self, event_type: &str, status: &str) {
        self.emit(
            "nexus_webhook_deliveries_total",
            "Count",
            1.0,
            &[("event_type", event_type), ("status", status)],
        );
    }

    fn latency(&self, subscriber_id: &str, seconds: f64) {
        self.emit(
            "nexus_webhook_delivery_latency_seconds",
            "Seconds",
            seconds,
            &[("subscriber_id", subscriber_id)],
        );
    }

    fn retry(&self, event_type: &str) {
        self.emit(
            "nexus_webhook_retries_total",
            "Count",
            1.0,
            &[("event_type", event_type)],
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_render_with_the_briefs_names_and_labels() {
        let metrics = Prometheus::default();
        metrics.delivery("build.completed", "success");
        metrics.delivery("build.completed", "success");
        metrics.retry("deployment.completed");
        metrics.latency("sub_123", 0.3);
        let text = metrics.render(&Gauges {
            active_subscriptions: BTreeMap::from([("build.completed".to_owned(), 8)]),
            queue_size: 3,
        });
        assert!(text.contains(
            "nexus_webhook_deliveries_total{event_type=\"build.completed\",status=\"success\"} 2"
        ));
        assert!(text.contains("nexus_webhook_retries_total{event_type=\"deployment.completed\"} 1"));
        assert!(text.contains(
            "nexus_webhook_delivery_latency_seconds_bucket{subscriber_id=\"sub_123\",le=\"0.5\"} 1"
        ));
        assert!(text.contains(
            "nexus_webhook_delivery_latency_seconds_bucket{subscriber_id=\"sub_123\",le=\"0.25\"} 0"
        ));
        assert!(
            text.contains("nexus_webhook_active_subscriptions{event_type=\"build.completed\"} 8")
        );
        assert!(text.contains("nexus_webhook_queue_size 3"));
    }
}
