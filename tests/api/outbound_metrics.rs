//! `/metrics` on `nexus serve`: the brief's Prometheus names and labels. (On Lambda the
//! same counters are EMF log lines, unit-tested in shared.)

use serde_json::json;

use crate::helpers::{spawn_app_with, Backend};
use crate::outbound_support::outbound_options;
use crate::receiver::{Answer, Receiver};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_metrics_have_the_briefs_names_and_labels() {
    let app = spawn_app_with(Backend::Local, outbound_options()).await;
    let receiver = Receiver::scripted([Answer::status(500)]).await;
    let subscription = app.subscribe(&receiver.url(), &["build.*"]).await;
    let retried = app.publish_one("build.completed", json!({})).await;
    app.wait_until_final(&retried).await;
    let dead = app
        .subscribe(
            &crate::receiver::refused_url().await,
            &["deployment.failed"],
        )
        .await;
    let failed = app.publish_one("deployment.failed", json!({})).await;
    assert_eq!(app.wait_until_final(&failed).await["status"], "failed");

    let response = app
        .client
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    let text = response.text().await.unwrap();
    let sub = &subscription.id;
    let expected = [
        r#"nexus_webhook_deliveries_total{event_type="build.completed",status="success"} 1"#
            .to_owned(),
        r#"nexus_webhook_deliveries_total{event_type="deployment.failed",status="failed"} 1"#
            .to_owned(),
        r#"nexus_webhook_retries_total{event_type="build.completed"} 1"#.to_owned(),
        r#"nexus_webhook_retries_total{event_type="deployment.failed"} 2"#.to_owned(),
        format!(
            r#"nexus_webhook_delivery_latency_seconds_bucket{{subscriber_id="{sub}",le="+Inf"}} 2"#
        ),
        format!(r#"nexus_webhook_delivery_latency_seconds_count{{subscriber_id="{sub}"}} 2"#),
        format!(
            r#"nexus_webhook_delivery_latency_seconds_bucket{{subscriber_id="{}",le="+Inf"}} 3"#,
            dead.id
        ),
        r#"nexus_webhook_active_subscriptions{event_type="build.*"} 1"#.to_owned(),
        r#"nexus_webhook_active_subscriptions{event_type="deployment.failed"} 1"#.to_owned(),
        "nexus_webhook_queue_size 0".to_owned(),
    ];
    let lines: Vec<&str> = text.lines().collect();
    for line in &expected {
        assert!(lines.contains(&line.as_str()), "missing {line}\n{text}");
    }
    let buckets = lines
        .iter()
        .filter(|l| {
            l.starts_with(&format!(
                r#"nexus_webhook_delivery_latency_seconds_bucket{{subscriber_id="{sub}",le=""#
            ))
        })
        .count();
    assert!(buckets > 2, "a histogram with several buckets\n{text}");
    for name in [
        "deliveries_total",
        "delivery_latency_seconds",
        "retries_total",
        "active_subscriptions",
        "queue_size",
    ] {
        assert!(
            text.contains(&format!("# TYPE nexus_webhook_{name} ")),
            "{name}\n{text}"
        );
    }
}
