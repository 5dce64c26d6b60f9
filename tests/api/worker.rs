//! `nexus worker`, the real binary, against a real `nexus serve`: item files, notify
//! commands, at-least-once retries, unconfigured agents, and its failure modes.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Instant;

use reqwest::StatusCode;
use serde_json::Value;
use tokio::process::Command;

use crate::helpers::{spawn_app, unique, Backend, TestApp, DEADLINE};

/// Appends one record per call to the log file given as `$0`: a `call` line, then the files.
const RECORDER: &str = r#"{ echo "call $NEXUS_AGENT_ID $NEXUS_WEBHOOK_COUNT ${NEXUS_API_KEY:-no-key} $(pwd -P)"; printf '%s\n' "$NEXUS_WEBHOOK_FILES"; } >> "$0""#;

/// A worker's temporary world: config file, agent workspaces, a notify log.
struct Setup {
    dir: tempfile::TempDir,
}

/// One recorded notify call.
#[derive(Debug)]
struct Call {
    agent: String,
    count: usize,
    saw_key: bool,
    cwd: PathBuf,
    files: Vec<PathBuf>,
}

impl Setup {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    fn workspace(&self, agent: &str) -> PathBuf {
        let path = self.dir.path().join(agent);
        std::fs::create_dir_all(&path).unwrap();
        path.canonicalize().unwrap()
    }

    fn inbox(&self, agent: &str) -> PathBuf {
        self.workspace(agent).join("inbox/webhooks")
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("notify.log")
    }

    fn recorder(&self) -> Vec<String> {
        let log = self.log().to_string_lossy().into_owned();
        vec!["sh".into(), "-c".into(), RECORDER.into(), log]
    }

    /// Writes the config: `settings` (TOML lines) and one `[agents.*]` table per agent.
    fn config(&self, gateway: &str, settings: &str, agents: &[(&str, Vec<String>)]) -> PathBuf {
        let quote = |s: &str| serde_json::to_string(s).unwrap();
        let mut text = format!("gateway = {}\n{settings}\n", quote(gateway));
        for (agent, notify) in agents {
            text.push_str(&format!(
                "[agents.{agent}]\nworkspace = {}\nnotify = {}\n",
                quote(&self.workspace(agent).to_string_lossy()),
                serde_json::to_string(notify).unwrap()
            ));
        }
        let path = self.dir.path().join("nexus-worker.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    fn calls(&self) -> Vec<Call> {
        let text = std::fs::read_to_string(self.log()).unwrap_or_default();
        let mut calls: Vec<Call> = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("call ") {
                let parts: Vec<&str> = rest.splitn(4, ' ').collect();
                calls.push(Call {
                    agent: parts[0].to_owned(),
                    count: parts[1].parse().unwrap(),
                    saw_key: parts[2] != "no-key",
                    cwd: PathBuf::from(parts[3]),
                    files: Vec::new(),
                });
            } else if !line.is_empty() {
                calls.last_mut().unwrap().files.push(PathBuf::from(line));
            }
        }
        calls
    }
}

fn worker(config: &Path, key: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_nexus"));
    command
        .arg("worker")
        .arg("--config")
        .arg(config)
        .env("NEXUS_API_KEY", key)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// Runs `nexus worker --once` to the end; returns its output.
async fn run_once(config: &Path, key: &str) -> Output {
    let child = worker(config, key).arg("--once").spawn().unwrap();
    finish(child).await
}

async fn finish(child: tokio::process::Child) -> Output {
    tokio::time::timeout(DEADLINE, child.wait_with_output())
        .await
        .expect("the worker did not finish in time")
        .unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

async fn post(app: &TestApp, agent: &str, count: usize) {
    for n in 0..count {
        let body = format!(r#"{{"n": {n}, "big": 123456789012345678901234567890}}"#);
        let reply = app.webhook(agent, Some("test")).json(&body).send().await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    }
}

fn file_of(inbox: &Path, item: &Value) -> PathBuf {
    let id = item["id"].as_str().unwrap();
    inbox.join(format!("{}.json", id.split_once(':').unwrap().1))
}

fn files_in(dir: &Path) -> BTreeSet<PathBuf> {
    std::fs::read_dir(dir)
        .map(|entries| entries.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_become_files_named_by_row_key_and_notify_runs_once_per_batch() {
    let app = spawn_app(Backend::Local).await;
    let setup = Setup::new();
    let agent = unique("agent");
    post(&app, &agent, 3).await;
    let items = app.pending_items(&agent).await;
    let config = setup.config(&app.base, "", &[(&agent, setup.recorder())]);

    let output = run_once(&config, &app.api_key).await;

    assert!(output.status.success(), "{}", stderr(&output));
    let inbox = setup.inbox(&agent);
    let expected: Vec<PathBuf> = items.iter().map(|item| file_of(&inbox, item)).collect();
    for (item, path) in items.iter().zip(&expected) {
        let text = std::fs::read_to_string(path).unwrap();
        assert!(text.starts_with("{\n  \"id\": "), "pretty-printed: {text}");
        assert!(
            text.contains("123456789012345678901234567890"),
            "exact payload"
        );
        assert_eq!(&serde_json::from_str::<Value>(&text).unwrap(), item);
    }
    assert_eq!(files_in(&inbox), expected.iter().cloned().collect());
    let calls = setup.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(
        (calls[0].agent.as_str(), calls[0].count),
        (agent.as_str(), 3)
    );
    assert_eq!(calls[0].files, expected);
    assert_eq!(calls[0].cwd, setup.workspace(&agent));
    assert!(
        !calls[0].saw_key,
        "the API key is not passed to notify commands"
    );
    assert!(app.pending_items(&agent).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_page_is_a_batch_and_the_cursor_is_followed_to_the_end() {
    let app = spawn_app(Backend::Local).await;
    let setup = Setup::new();
    let agent = unique("pages");
    post(&app, &agent, 5).await;
    let config = setup.config(&app.base, "page_size = 2", &[(&agent, setup.recorder())]);

    let output = run_once(&config, &app.api_key).await;

    assert!(output.status.success(), "{}", stderr(&output));
    let counts: Vec<usize> = setup.calls().iter().map(|c| c.count).collect();
    assert_eq!(counts, [2, 2, 1]);
    assert_eq!(files_in(&setup.inbox(&agent)).len(), 5);
    assert!(app.pending_items(&agent).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_notify_leaves_items_pending_and_the_next_run_delivers_the_same_files() {
    let app = spawn_app(Backend::Local).await;
    let setup = Setup::new();
    let agent = unique("retry");
    post(&app, &agent, 2).await;
    let failing = vec!["sh".to_owned(), "-c".to_owned(), "exit 3".to_owned()];
    let config = setup.config(&app.base, "", &[(&agent, failing)]);

    let failed = run_once(&config, &app.api_key).await;

    assert!(!failed.status.success());
    assert!(
        stderr(&failed).contains("notify command 'sh' failed"),
        "{}",
        stderr(&failed)
    );
    let inbox = setup.inbox(&agent);
    let first_files = files_in(&inbox);
    assert_eq!(first_files.len(), 2);
    assert_eq!(app.pending_items(&agent).await.len(), 2, "still pending");

    let config = setup.config(&app.base, "", &[(&agent, setup.recorder())]);
    let fixed = run_once(&config, &app.api_key).await;

    assert!(fixed.status.success(), "{}", stderr(&fixed));
    assert_eq!(files_in(&inbox), first_files, "overwritten, not duplicated");
    let calls = setup.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(
        calls[0].files.iter().cloned().collect::<BTreeSet<_>>(),
        first_files
    );
    assert!(app.pending_items(&agent).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notify_that_hangs_is_killed_at_the_timeout_and_its_items_stay_pending() {
    let app = spawn_app(Backend::Local).await;
    let setup = Setup::new();
    let agent = unique("slow");
    post(&app, &agent, 1).await;
    let hanging = vec!["sh".to_owned(), "-c".to_owned(), "exec sleep 60".to_owned()];
    let config = setup.config(
        &app.base,
        "notify_timeout = \"500ms\"",
        &[(&agent, hanging)],
    );

    let output = run_once(&config, &app.api_key).await;

    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("did not finish within 500ms"),
        "{}",
        stderr(&output)
    );
    assert_eq!(app.pending_items(&agent).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_of_an_unconfigured_agent_stay_pending() {
    let app = spawn_app(Backend::Local).await;
    let setup = Setup::new();
    let served = unique("served");
    let stranger = unique("stranger");
    post(&app, &stranger, 2).await;
    post(&app, &served, 1).await;
    let before = app.pending_items(&stranger).await;
    let config = setup.config(&app.base, "page_size = 1", &[(&served, setup.recorder())]);

    let output = run_once(&config, &app.api_key).await;

    assert!(output.status.success(), "{}", stderr(&output));
    let log = stderr(&output);
    assert!(
        log.contains(&stranger) && log.contains("not in the worker config"),
        "{log}"
    );
    assert_eq!(
        log.matches("not in the worker config").count(),
        1,
        "warned once: {log}"
    );
    assert_eq!(app.pending_items(&stranger).await, before);
    assert!(app.pending_items(&served).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_against_an_unreachable_gateway_exits_non_zero_quickly() {
    let setup = Setup::new();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let gateway = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let config = setup.config(&gateway, "", &[("agent", setup.recorder())]);

    let started = Instant::now();
    let output = run_once(&config, "any-key").await;

    assert!(!output.status.success());
    assert!(started.elapsed() < DEADLINE / 2);
    let log = stderr(&output);
    assert!(
        log.contains(&format!("cannot reach the gateway at {gateway}")),
        "{log}"
    );
    assert!(!log.contains("any-key"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_api_key_stops_the_service_with_a_clear_401_message() {
    let app = spawn_app(Backend::Local).await;
    let setup = Setup::new();
    let config = setup.config(&app.base, "", &[("agent", setup.recorder())]);

    // Not --once: a 401 must stop a long-running worker too, not be retried forever.
    let output = finish(worker(&config, "not-the-key").spawn().unwrap()).await;

    assert!(!output.status.success());
    let log = stderr(&output);
    assert!(
        log.contains("refused the API key (401 Unauthorized)"),
        "{log}"
    );
    assert!(log.contains("NEXUS_API_KEY"), "{log}");
    assert!(!log.contains("not-the-key"), "the key is never logged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_config_is_refused_naming_the_field() {
    let setup = Setup::new();
    let config = setup.config("http://127.0.0.1:1", "", &[("agent", Vec::new())]);

    let output = run_once(&config, "key").await;

    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("agents.agent.notify"),
        "{}",
        stderr(&output)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_delivers_new_items_and_stops_gracefully_on_sigterm() {
    let app = spawn_app(Backend::Local).await;
    let setup = Setup::new();
    let agent = unique("service");
    std::fs::write(setup.dir.path().join("key"), &app.api_key).unwrap();
    let settings = "poll_interval = \"100ms\"\napi_key_file = \"key\"";
    let config = setup.config(&app.base, settings, &[(&agent, setup.recorder())]);
    let child = worker(&config, "")
        .env_remove("NEXUS_API_KEY")
        .spawn()
        .unwrap();

    post(&app, &agent, 1).await;
    let started = Instant::now();
    while setup.calls().is_empty() || !app.pending_items(&agent).await.is_empty() {
        assert!(
            started.elapsed() < DEADLINE,
            "the item was not delivered in time"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let pid = child.id().unwrap().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(killed.success());
    let output = finish(child).await;

    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stderr(&output).contains("worker stopped"));
    assert_eq!(files_in(&setup.inbox(&agent)).len(), 1);
}
