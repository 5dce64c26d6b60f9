//! `spawn_app`: a running gateway on either backend, with typed helpers per endpoint.

mod client;
mod moto;

pub use client::*;
pub use moto::*;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use aws_config::SdkConfig;
use nexus_shared::config::Config;
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

/// `nexus serve` on 127.0.0.1, a port the OS picks, keeping its data in `data_dir`.
pub fn serve_command(data_dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_nexus"));
    command
        .args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir);
    command
}

/// Starts the real `nexus serve` binary on 127.0.0.1:0 and reads its address.
async fn spawn_local(options: Options) -> TestApp {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let api_key = unique("key");
    let mut command = serve_command(data_dir.path());
    command
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

/// `GET url` with the API key, for tests that run `nexus serve` themselves: the JSON body.
pub async fn get_json(client: &reqwest::Client, url: &str, key: &str) -> serde_json::Value {
    client
        .get(url)
        .bearer_auth(key)
        .send()
        .await
        .expect("sending a GET")
        .json()
        .await
        .expect("a JSON body")
}

/// The venv's python (`scripts/test.sh` sets it, with the tools the oracles use), or `None`
/// (after saying so) when absent; under `NEXUS_REQUIRE_AWS_TESTS=1` its absence fails.
pub fn test_python(what: &str) -> Option<String> {
    match std::env::var("NEXUS_TEST_PYTHON") {
        Ok(python) if !python.is_empty() => Some(python),
        _ if std::env::var("NEXUS_REQUIRE_AWS_TESTS").as_deref() == Ok("1") => {
            panic!("NEXUS_REQUIRE_AWS_TESTS=1 but NEXUS_TEST_PYTHON is not set")
        }
        _ => {
            eprintln!("skipping {what}: run scripts/test.sh for its Python tools");
            None
        }
    }
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

/// The data directory of a test server, for tests that restart it.
pub fn temp_data_dir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().to_path_buf();
    (dir, path)
}
