//! The outbound AWS adapters against moto: `DynamoOutbound` (publish, idempotency, delivery
//! pages, counters, rate slots), `SqsQueue` (delays, receive counts, visibility, DLQ), and
//! the deliver Lambda's `handle_sqs_batch` end to end with real receivers on 127.0.0.1
//! (`crate::receiver`), every `events/sqs-*.json` fixture included, and the sweep for
//! stranded deliveries with its schedule fixture.
//! Every test makes its own table and queues; each is skipped without a moto server.

mod handler;
mod queue;
mod store;
mod sweep;

use std::time::Duration;

use aws_config::SdkConfig;
use chrono::{DateTime, Utc};
use nexus_shared::adapters::aws::DynamoOutbound;
use nexus_shared::config::Config;
use nexus_shared::domain::outbound::{
    generate_secret, Delivery, Event, EventId, EventPattern, EventType, Filters, SigningSecret,
    Subscription, SubscriptionId, TargetUrl,
};

use crate::helpers::{add_outbound, aws_endpoint, aws_fixture, Options};

/// Fresh moto resources (inbox and outbound tables, queues) and a configuration using
/// them with a short retry schedule; `None` when there is no moto server.
async fn moto() -> Option<(SdkConfig, Config)> {
    aws_endpoint()?;
    let (fixture, mut config) = aws_fixture(&Options::default()).await;
    add_outbound(&fixture.sdk, &mut config).await;
    let outbound = &mut config.outbound;
    outbound.allow_private_targets = true;
    outbound.max_retries = 2;
    outbound.initial_delay = Duration::from_secs(1);
    outbound.max_delay = Duration::from_secs(2);
    outbound.throttle_delay = Duration::from_secs(1);
    outbound.timeout = Duration::from_secs(5);
    Some((fixture.sdk, config))
}

fn dynamo_outbound(sdk: &SdkConfig, config: &Config) -> DynamoOutbound {
    DynamoOutbound::new(
        aws_sdk_dynamodb::Client::new(sdk),
        config.outbound.table.clone(),
        Duration::from_secs(3600),
    )
}

/// The secret every test subscription signs with.
fn secret() -> String {
    use secrecy::ExposeSecret;
    generate_secret(&[7; 32]).expose_secret().to_owned()
}

fn subscription(url: &str, pattern: &str) -> Subscription {
    let now = Utc::now();
    Subscription {
        id: SubscriptionId::new(),
        name: "test subscriber".into(),
        url: TargetUrl::parse(url, true).unwrap(),
        events: vec![EventPattern::parse(pattern).unwrap()],
        filters: Filters::default(),
        description: None,
        rate_limit: None,
        active: true,
        secrets: vec![SigningSecret::current(secret().into())],
        created_at: now,
        updated_at: now,
    }
}

fn event(event_type: &str, at: DateTime<Utc>) -> Event {
    Event::new(
        EventId::new(),
        EventType::parse(event_type).unwrap(),
        "jenkins".into(),
        serde_json::json!({"build": 42}),
        Default::default(),
        at,
    )
}

fn deliveries(event: &Event, subscriptions: &[&Subscription]) -> Vec<Delivery> {
    subscriptions
        .iter()
        .map(|s| Delivery::new(event, s.id.clone(), event.timestamp))
        .collect()
}
