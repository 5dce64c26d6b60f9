//! Running an agent's notify command once for a batch (the brief's `sessions_spawn`).
//!
//! The command learns about the batch from its environment:
//! - `NEXUS_WEBHOOK_FILES`: the batch's item files, absolute paths, one per line;
//! - `NEXUS_WEBHOOK_COUNT`: how many there are;
//! - `NEXUS_AGENT_ID`: the agent;
//! - `NEXUS_INBOX_DIR`: `{workspace}/inbox/webhooks`;
//!
//! and runs in the agent's workspace. Only exit status 0 counts as delivered.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::bail;
use tokio::process::Command;

use super::config::AgentConfig;

/// One agent's batch, as the notify command sees it.
pub struct Batch<'a> {
    pub agent: &'a str,
    pub config: &'a AgentConfig,
    pub files: &'a [PathBuf],
}

/// Runs the command and waits for it, at most `timeout`. `hidden_env` (the variable holding
/// the gateway's API key) is not passed on: agents have no business with it.
pub async fn run(batch: &Batch<'_>, timeout: Duration, hidden_env: &str) -> anyhow::Result<()> {
    let argv = &batch.config.notify;
    let files = batch
        .files
        .iter()
        .map(|path| path.to_string_lossy())
        .collect::<Vec<_>>()
        .join("\n");
    let mut command = Command::new(&argv[0]);
    command
        .args(&argv[1..])
        .current_dir(&batch.config.workspace)
        .env_remove(hidden_env)
        .env("NEXUS_WEBHOOK_FILES", files)
        .env("NEXUS_WEBHOOK_COUNT", batch.files.len().to_string())
        .env("NEXUS_AGENT_ID", batch.agent)
        .env("NEXUS_INBOX_DIR", batch.config.inbox_dir())
        .stdin(Stdio::null())
        // Should the worker itself be dropped mid-wait, the command does not outlive it.
        .kill_on_drop(true);
    let program = &argv[0];
    let mut child = command
        .spawn()
        .map_err(|e| anyhow::anyhow!("notify command '{program}' could not start: {e}"))?;
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) if status.success() => Ok(()),
        Ok(Ok(status)) => bail!("notify command '{program}' failed ({status})"),
        Ok(Err(e)) => bail!("waiting for notify command '{program}' failed: {e}"),
        Err(_) => {
            // Best effort: the item files stay and the items stay pending either way.
            let _ = child.kill().await;
            bail!(
                "notify command '{program}' did not finish within {} and was killed",
                humantime::format_duration(timeout)
            )
        }
    }
}
