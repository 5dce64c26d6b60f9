//! `nexus serve` itself: its API key and its data directory, which one server holds.

use reqwest::StatusCode;
use tokio::process::Command;

use crate::helpers::{get_json, serve_command, start_server, temp_data_dir, unique};

fn serve(data_dir: &std::path::Path) -> Command {
    let mut command = serve_command(data_dir);
    command.env_remove("NEXUS_API_KEY");
    command
}

/// Kills a server and waits until it is gone, and its hold on the data directory with it.
async fn stop(mut server: tokio::process::Child) {
    server.kill().await.expect("killing nexus serve");
}

#[tokio::test]
async fn a_second_server_on_the_same_data_directory_refuses_to_start() {
    let (_dir, data_dir) = temp_data_dir();
    let (_first, _) = start_server(serve(&data_dir)).await;

    let second = serve(&data_dir)
        .kill_on_drop(true)
        .output()
        .await
        .expect("running a second nexus serve");

    assert!(!second.status.success());
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains("another nexus serve is using the data directory"),
        "{stderr}"
    );
}

#[tokio::test]
async fn without_a_configured_key_one_is_generated_once_and_kept() {
    let (_dir, data_dir) = temp_data_dir();

    let (first, base) = start_server(serve(&data_dir)).await;
    let key = std::fs::read_to_string(data_dir.join("api_key")).unwrap();
    let client = reqwest::Client::new();
    let pending = |base: String, key: String| {
        let client = client.clone();
        async move {
            client
                .get(format!("{base}/api/webhook/pending"))
                .bearer_auth(key)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(pending(base.clone(), key.clone()).await, StatusCode::OK);
    stop(first).await;

    let (_second, base) = start_server(serve(&data_dir)).await;
    assert_eq!(
        std::fs::read_to_string(data_dir.join("api_key")).unwrap(),
        key
    );
    assert_eq!(pending(base.clone(), key).await, StatusCode::OK);
    assert_eq!(
        pending(base, unique("wrong")).await,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn items_survive_a_restart_on_the_same_data_directory() {
    let (_dir, data_dir) = temp_data_dir();
    let key = unique("key");
    let agent = unique("durable");
    let client = reqwest::Client::new();

    let mut command = serve(&data_dir);
    command.env("NEXUS_API_KEY", &key);
    let (first, base) = start_server(command).await;
    let receipt: serde_json::Value = client
        .post(format!("{base}/api/webhook/{agent}"))
        .header("content-type", "application/json")
        .body(r#"{"keep":"me"}"#)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    stop(first).await;

    let mut command = serve(&data_dir);
    command.env("NEXUS_API_KEY", &key);
    let (_second, base) = start_server(command).await;
    let pending = get_json(
        &client,
        &format!("{base}/api/webhook/pending?agent={agent}"),
        &key,
    )
    .await;
    assert_eq!(pending["agents"][&agent][0]["id"], receipt["id"]);
    assert_eq!(pending["agents"][&agent][0]["payload"]["keep"], "me");
}
