//! moto server resources shaped like template.yaml's: tables and queues.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};
use nexus_shared::config::Config;

use super::unique;

/// The test SDK configuration for moto.
pub async fn moto_sdk(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "tests"))
        .load()
        .await
}

/// Turns on TTL on `expires_at`, as template.yaml does for both tables.
async fn enable_ttl(client: &aws_sdk_dynamodb::Client, table: &str) {
    client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .attribute_name("expires_at")
                .enabled(true)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("enabling TTL in moto");
}

fn key(name: &str, kind: KeyType) -> KeySchemaElement {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kind)
        .build()
        .unwrap()
}

fn string_attr(name: &str) -> AttributeDefinition {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .unwrap()
}

/// Creates an inbox table shaped exactly like template.yaml's (scripts/validate_template.py
/// pins the template to these names).
pub async fn create_inbox_table(sdk: &SdkConfig, table: &str) {
    let client = aws_sdk_dynamodb::Client::new(sdk);
    let index = |name: &str, hash: &str| {
        GlobalSecondaryIndex::builder()
            .index_name(name)
            .key_schema(key(hash, KeyType::Hash))
            .key_schema(key("sk", KeyType::Range))
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::All)
                    .build(),
            )
            .build()
            .unwrap()
    };
    client
        .create_table()
        .table_name(table)
        .billing_mode(aws_sdk_dynamodb::types::BillingMode::PayPerRequest)
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range))
        .attribute_definitions(string_attr("pk"))
        .attribute_definitions(string_attr("sk"))
        .attribute_definitions(string_attr("pending"))
        .attribute_definitions(string_attr("pending_agent"))
        .global_secondary_indexes(index("pending-by-time", "pending"))
        .global_secondary_indexes(index("pending-by-agent", "pending_agent"))
        .send()
        .await
        .expect("creating the inbox table in moto");
    enable_ttl(&client, table).await;
}

/// Creates an outbound table shaped exactly like template.yaml's `OutboundTable`
/// (scripts/validate_template.py pins the template to these names).
pub async fn create_outbound_table(sdk: &SdkConfig, table: &str) {
    use nexus_shared::adapters::aws::{
        INDEX_BY_STATUS, INDEX_BY_SUBSCRIPTION, INDEX_BY_SUBSCRIPTION_STATUS, INDEX_NEWEST,
    };
    let client = aws_sdk_dynamodb::Client::new(sdk);
    let indexes = [
        (INDEX_NEWEST, "dlv_list"),
        (INDEX_BY_SUBSCRIPTION, "dlv_sub"),
        (INDEX_BY_STATUS, "dlv_status"),
        (INDEX_BY_SUBSCRIPTION_STATUS, "dlv_sub_status"),
    ];
    let mut request = client
        .create_table()
        .table_name(table)
        .billing_mode(aws_sdk_dynamodb::types::BillingMode::PayPerRequest)
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range))
        .attribute_definitions(string_attr("pk"))
        .attribute_definitions(string_attr("sk"))
        .attribute_definitions(string_attr("dlv_id"));
    for (name, hash) in indexes {
        request = request
            .attribute_definitions(string_attr(hash))
            .global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name(name)
                    .key_schema(key(hash, KeyType::Hash))
                    .key_schema(key("dlv_id", KeyType::Range))
                    .projection(
                        Projection::builder()
                            .projection_type(ProjectionType::KeysOnly)
                            .build(),
                    )
                    .build()
                    .unwrap(),
            );
    }
    request
        .send()
        .await
        .expect("creating the outbound table in moto");
    enable_ttl(&client, table).await;
}

/// A fresh delivery queue and its dead-letter queue, redriving after `max_receive_count`
/// receives as template.yaml's does; returns their URLs `(queue, dlq)`.
pub async fn create_queues(sdk: &SdkConfig, max_receive_count: u32) -> (String, String) {
    use aws_sdk_sqs::types::QueueAttributeName;
    let client = aws_sdk_sqs::Client::new(sdk);
    let name = unique("deliveries");
    let dlq = client
        .create_queue()
        .queue_name(format!("{name}-dlq"))
        .send()
        .await
        .expect("creating the DLQ in moto")
        .queue_url
        .expect("a DLQ url");
    let dlq_arn = client
        .get_queue_attributes()
        .queue_url(&dlq)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("reading the DLQ arn")
        .attributes
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .expect("a DLQ arn");
    let redrive = serde_json::json!({
        "deadLetterTargetArn": dlq_arn,
        "maxReceiveCount": max_receive_count.to_string(),
    });
    let queue = client
        .create_queue()
        .queue_name(name)
        .attributes(QueueAttributeName::RedrivePolicy, redrive.to_string())
        .attributes(QueueAttributeName::VisibilityTimeout, "360")
        .send()
        .await
        .expect("creating the delivery queue in moto")
        .queue_url
        .expect("a queue url");
    (queue, dlq)
}

/// Creates a fresh outbound table and queues and points `config` at them, for the Lambda
/// adapters (`adapters::aws::app_state` needs both queue URLs).
pub async fn add_outbound(sdk: &SdkConfig, config: &mut Config) {
    config.outbound.table = unique("outbound");
    create_outbound_table(sdk, &config.outbound.table).await;
    let (queue, dlq) = create_queues(sdk, 100).await;
    config.outbound.queue_url = Some(queue);
    config.outbound.dlq_url = Some(dlq);
}
