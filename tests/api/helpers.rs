//! `spawn_app`: a running gateway on either backend, with typed helpers per endpoint.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};
use nexus_shared::config::Config;
use reqwest::header::CONTENT_TYPE;
use reqwest::{Response, StatusCode};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// How long anything a test waits for may take on a busy 2-core machine.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// Which backend a behaviour test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// `nexus serve` (the real binary) on a fresh SQLite data directory.
    Local,
    /// The Lambda routers on DynamoDB and Secrets Manager (moto server).
    Aws,
}

/// Runs a behaviour test once per backend, as `local::name` and `aws::name`.
macro_rules! behaviour {
    ($($name:ident),* $(,)?) => {
        mod local {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name($crate::helpers::Backend::Local).await }) *
        }
        mod aws {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                if $crate::helpers::aws_endpoint().is_some() {
                    super::$name($crate::helpers::Backend::Aws).await
                }
            }) *
        }
    };
}
pub(crate) use behaviour;

/// The moto server's URL, or `None` (after saying so) when the AWS tests cannot run.
/// `scripts/test.sh` sets `NEXUS_REQUIRE_AWS_TESTS=1`, making a missing server a failure.
pub fn aws_endpoint() -> Option<String> {
    match std::env::var("NEXUS_TEST_AWS_ENDPOINT") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("NEXUS_REQUIRE_AWS_TESTS").as_deref() == Ok("1") => {
            panic!("NEXUS_REQUIRE_AWS_TESTS=1 but NEXUS_TEST_AWS_ENDPOINT is not set")
        }
        _ => {
            eprintln!("skipping an AWS backend test: run scripts/test.sh to start moto server");
            None
        }
    }
}

/// A unique name per test, so tests share nothing on a shared server.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", ulid::Ulid::new().to_string().to_lowercase())
}

/// What a test configures before the app starts.
#[derive(Clone, Default)]
pub struct Options {
    /// Secrets by name (`WEBHOOK_SECRET_{agent}_{source}`…).
    pub secrets: Vec<(String, String)>,
    pub max_body_bytes: Option<usize>,
    pub pending_max_bytes: Option<usize>,
    pub secrets_cache_ttl: Option<Duration>,
    /// Outbound settings as environment variables (`WEBHOOK_TIMEOUT=1s`,
    /// `NEXUS_ALLOW_PRIVATE_TARGETS=true`…): `nexus serve` gets them in its environment, the
    /// AWS backend parses the same pairs with `Config::from_lookup`.
    pub outbound: Vec<(String, String)>,
}

impl Options {
    pub fn secret(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.secrets.push((name.into(), value.into()));
        self
    }

    /// Sets one outbound variable (a later value for the same name wins).
    pub fn outbound(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.outbound.push((name.into(), value.into()));
        self
    }

    /// The outbound variable `name`, as the last [`outbound`](Self::outbound) set it.
    pub fn outbound_var(&self, name: &str) -> Option<String> {
        self.outbound
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    }
}

/// A running gateway and a client for it.
pub struct TestApp {
    pub base: String,
    pub api_key: String,
    pub client: reqwest::Client,
    /// Set on the AWS backend: where secrets live, for rotation tests.
    pub aws: Option<AwsFixture>,
    _running: Running,
}

enum Running {
    // Held only to be dropped with the app: the child is killed, the directory removed.
    Process(
        #[allow(dead_code)] Box<Child>,
        #[allow(dead_code)] tempfile::TempDir,
    ),
    Task(tokio::task::JoinHandle<()>),
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Running::Task(task) = self {
            task.abort();
        }
    }
}

/// The AWS resources one test owns.
#[derive(Clone)]
pub struct AwsFixture {
    pub sdk: SdkConfig,
    pub table: String,
    pub secrets_prefix: String,
    /// The delivery queue's dead-letter queue, for apps from `spawn_app`.
    pub dlq_url: Option<String>,
}

impl AwsFixture {
    pub async fn put_secret(&self, name: &str, value: &str) {
        let client = aws_sdk_secretsmanager::Client::new(&self.sdk);
        let id = format!("{}{name}", self.secrets_prefix);
        let created = client
            .create_secret()
            .name(&id)
            .secret_string(value)
            .send()
            .await;
        if created.is_err() {
            client
                .put_secret_value()
                .secret_id(&id)
                .secret_string(value)
                .send()
                .await
                .expect("rotating a secret in moto");
        }
    }
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, Options::default()).await
}

pub async fn spawn_app_with(backend: Backend, options: Options) -> TestApp {
    match backend {
        Backend::Local => spawn_local(options).await,
        Backend::Aws => spawn_aws(options).await,
    }
}

/// Starts the real `nexus serve` binary on 127.0.0.1:0 and reads its address.
async fn spawn_local(options: Options) -> TestApp {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let api_key = unique("key");
    let mut command = Command::new(env!("CARGO_BIN_EXE_nexus"));
    command
        .args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir.path())
        .env("NEXUS_API_KEY", &api_key)
        .envs(options.secrets.iter().map(|(k, v)| (k, v)))
        .envs(options.outbound.iter().map(|(k, v)| (k, v)));
    if let Some(bytes) = options.max_body_bytes {
        command.env("NEXUS_MAX_BODY_BYTES", bytes.to_string());
    }
    if let Some(bytes) = options.pending_max_bytes {
        command.env("NEXUS_PENDING_MAX_BYTES", bytes.to_string());
    }
    let (child, base) = start_server(command).await;
    TestApp {
        base,
        api_key,
        client: reqwest::Client::new(),
        aws: None,
        _running: Running::Process(Box::new(child), data_dir),
    }
}

/// Starts `nexus serve` as configured by `command` and returns it with its base URL.
pub async fn start_server(mut command: Command) -> (Child, String) {
    command
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    let mut child = command.spawn().expect("starting nexus serve");
    let stdout = child.stdout.take().expect("piped stdout");
    let base = tokio::time::timeout(DEADLINE, async {
        let mut lines = BufReader::new(stdout).lines();
        while let Some(line) = lines.next_line().await.expect("reading nexus output") {
            if let Some(url) = line.strip_prefix("nexus listening on ") {
                // Keep draining its output so the server never blocks on a full pipe.
                tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
                return url.to_owned();
            }
        }
        panic!("nexus serve exited before listening");
    })
    .await
    .expect("nexus serve did not start in time");
    (child, base)
}

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

/// Runs a Python oracle script to completion within the deadline; asserts it succeeded and
/// returns everything it printed.
pub async fn run_oracle(mut command: Command) -> String {
    let output = tokio::time::timeout(DEADLINE, command.kill_on_drop(true).output())
        .await
        .expect("the oracle did not finish in time")
        .expect("running the oracle");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{}\n{report}", output.status);
    report
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

/// Fresh AWS resources for one test, and the configuration that points at them.
pub async fn aws_fixture(options: &Options) -> (AwsFixture, Config) {
    let endpoint = aws_endpoint().expect("AWS tests need NEXUS_TEST_AWS_ENDPOINT");
    let sdk = moto_sdk(&endpoint).await;
    let fixture = AwsFixture {
        sdk,
        table: unique("inbox"),
        secrets_prefix: format!("{}/", unique("nexus")),
        dlq_url: None,
    };
    create_inbox_table(&fixture.sdk, &fixture.table).await;
    for (name, value) in &options.secrets {
        fixture.put_secret(name, value).await;
    }
    let mut config = Config {
        table: fixture.table.clone(),
        secrets_prefix: fixture.secrets_prefix.clone(),
        ..Config::default()
    };
    if let Some(bytes) = options.max_body_bytes {
        config.max_body_bytes = bytes;
    }
    if let Some(bytes) = options.pending_max_bytes {
        config.pending_max_bytes = bytes;
    }
    if let Some(ttl) = options.secrets_cache_ttl {
        config.secrets_cache_ttl = ttl;
    }
    (fixture, config)
}

/// Serves the two Lambda routers on 127.0.0.1:0, routed as API Gateway routes them
/// (template.yaml): `POST /api/webhook/{agentId}` to ingest, the rest to api.
async fn spawn_aws(options: Options) -> TestApp {
    let (mut fixture, mut config) = aws_fixture(&options).await;
    let api_key = unique("key");
    fixture.put_secret("NEXUS_API_KEY", &api_key).await;
    config.api_key = None; // read from Secrets Manager, as on Lambda

    // The outbound variables exactly as `nexus serve` parses them.
    config.outbound = Config::from_lookup(|name| options.outbound_var(name))
        .expect("outbound options")
        .outbound;
    add_outbound(&fixture.sdk, &mut config).await;
    let queue_url = config.outbound.queue_url.clone().expect("a queue URL");
    fixture.dlq_url = config.outbound.dlq_url.clone();
    let state = nexus_shared::adapters::aws::app_state(&fixture.sdk, config).expect("config");
    let ingest = nexus_shared::http::ingest_router(state.clone());
    let api = nexus_shared::http::api_router(state.clone());
    let gateway = axum::Router::new()
        .route(
            "/api/webhook/{any_agent}",
            axum::routing::post_service(ingest).fallback_service(api.clone()),
        )
        .fallback_service(api);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    // The deliver Lambda under its SQS event source, beside the HTTP functions.
    let deliver = crate::outbound_event_source::run(fixture.sdk.clone(), state, queue_url);
    let task = tokio::spawn(async move {
        tokio::join!(
            async { axum::serve(listener, gateway).await.unwrap() },
            deliver
        );
    });
    TestApp {
        base,
        api_key,
        client: reqwest::Client::new(),
        aws: Some(fixture),
        _running: Running::Task(task),
    }
}

/// A response read whole: status and JSON body.
pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
}

impl Reply {
    async fn read(response: Response) -> Self {
        let status = response.status();
        let text = response.text().await.expect("reading the response");
        let body = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("response is not JSON ({status}): {text}"));
        Self { status, body }
    }

    /// Asserts the error shape and code, returning the message.
    pub fn error(&self, status: StatusCode, code: &str) -> String {
        assert_eq!(self.status, status, "body: {}", self.body);
        assert_eq!(self.body["error"]["code"], code, "body: {}", self.body);
        self.body["error"]["message"]
            .as_str()
            .expect("an error message")
            .to_owned()
    }
}

/// One webhook request, built up fluently.
pub struct Webhook<'a> {
    app: &'a TestApp,
    path: String,
    content_type: Option<String>,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl<'a> Webhook<'a> {
    pub fn json(mut self, body: &str) -> Self {
        self.content_type = Some("application/json".into());
        self.body = body.as_bytes().to_vec();
        self
    }

    pub fn body(mut self, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        self.content_type = Some(content_type.into());
        self.body = body.into();
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub async fn send(self) -> Reply {
        let mut request = self
            .app
            .client
            .post(format!("{}{}", self.app.base, self.path))
            .body(self.body);
        if let Some(content_type) = self.content_type {
            request = request.header(CONTENT_TYPE, content_type);
        }
        for (name, value) in self.headers {
            request = request.header(name, value);
        }
        Reply::read(request.send().await.expect("sending a webhook")).await
    }
}

impl TestApp {
    /// `POST /api/webhook/{agent}?source={source}` (no `source` when `None`).
    pub fn webhook(&self, agent: &str, source: Option<&str>) -> Webhook<'_> {
        let path = match source {
            Some(source) => format!("/api/webhook/{agent}?source={source}"),
            None => format!("/api/webhook/{agent}"),
        };
        Webhook {
            app: self,
            path,
            content_type: None,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// `GET /api/webhook/pending` with the given query string, authenticated.
    pub async fn pending(&self, query: &str) -> Reply {
        self.pending_as(Some(&self.api_key), query).await
    }

    pub async fn pending_as(&self, key: Option<&str>, query: &str) -> Reply {
        let mut request = self
            .client
            .get(format!("{}/api/webhook/pending?{query}", self.base));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        Reply::read(request.send().await.expect("listing pending")).await
    }

    /// The raw text of an authenticated pending list, to check payloads byte for byte.
    pub async fn pending_text(&self, query: &str) -> String {
        self.client
            .get(format!("{}/api/webhook/pending?{query}", self.base))
            .bearer_auth(&self.api_key)
            .send()
            .await
            .expect("listing pending")
            .text()
            .await
            .expect("reading pending")
    }

    /// All pending items of `agent`, following cursors.
    pub async fn pending_items(&self, agent: &str) -> Vec<Value> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut query = format!("agent={agent}&limit=100");
            if let Some(cursor) = &cursor {
                query.push_str(&format!("&cursor={cursor}"));
            }
            let reply = self.pending(&query).await;
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
            if let Some(group) = reply.body["agents"][agent].as_array() {
                items.extend(group.iter().cloned());
            }
            match reply.body["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => return items,
            }
        }
    }

    /// `DELETE /api/webhook/items` with `{"ids": ids}`.
    pub async fn delete_items(&self, ids: &[&str]) -> Reply {
        let response = self
            .client
            .delete(format!("{}/api/webhook/items", self.base))
            .bearer_auth(&self.api_key)
            .json(&serde_json::json!({ "ids": ids }))
            .send()
            .await
            .expect("deleting items");
        Reply::read(response).await
    }
}

/// The data directory of a test server, for tests that restart it.
pub fn temp_data_dir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().to_path_buf();
    (dir, path)
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
