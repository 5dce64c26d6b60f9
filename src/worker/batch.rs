//! Delivering one agent's share of a page: write the files, notify, then mark processed.
//!
//! The order is what makes delivery at-least-once and crash-safe: items are marked
//! processed only after their files are durable and the notify command has succeeded. A
//! crash or a failure anywhere before that leaves them pending, and the next poll writes
//! the same files again (same names) and notifies again.

use serde::Deserialize;
use serde_json::value::RawValue;

use super::client::{Gateway, GatewayError};
use super::config::{AgentConfig, MAX_PAGE_SIZE};
use super::notify::{self, Batch};
use super::{inbox, pretty};

/// Why a batch was not (wholly) delivered. Its items that were not marked stay pending.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// The gateway failed while marking items processed.
    #[error(transparent)]
    Gateway(#[from] GatewayError),
    /// Writing the files or the notify command failed, or items were malformed.
    #[error(transparent)]
    Local(#[from] anyhow::Error),
}

/// What the worker needs to deliver batches.
pub struct Deliverer<'a> {
    pub gateway: &'a Gateway,
    pub notify_timeout: std::time::Duration,
    /// The API key's variable, kept from notify commands.
    pub api_key_env: &'a str,
}

#[derive(Deserialize)]
struct ItemHead {
    id: String,
}

impl Deliverer<'_> {
    /// Delivers `items` (raw JSON objects from the pending list) to `agent`.
    pub async fn deliver(
        &self,
        agent: &str,
        config: &AgentConfig,
        items: &[Box<RawValue>],
    ) -> Result<usize, BatchError> {
        let mut ids = Vec::with_capacity(items.len());
        let mut files = Vec::with_capacity(items.len());
        let mut malformed = 0;
        for item in items {
            match head(agent, item) {
                Ok((id, name)) => {
                    ids.push(id);
                    files.push((name, pretty::pretty(item.get())));
                }
                Err(error) => {
                    // Left pending rather than dropped; the others still go through.
                    tracing::error!(agent, error = format!("{error:#}"), "skipping an item");
                    malformed += 1;
                }
            }
        }
        if !ids.is_empty() {
            self.deliver_valid(agent, config, &ids, files).await?;
        }
        if malformed > 0 {
            return Err(
                anyhow::anyhow!("{malformed} malformed item(s) of {agent} left pending").into(),
            );
        }
        Ok(ids.len())
    }

    async fn deliver_valid(
        &self,
        agent: &str,
        config: &AgentConfig,
        ids: &[String],
        files: Vec<(String, String)>,
    ) -> Result<(), BatchError> {
        let dir = config.inbox_dir();
        let paths = tokio::task::spawn_blocking(move || inbox::write_files(&dir, &files))
            .await
            .map_err(anyhow::Error::from)??;
        let batch = Batch {
            agent,
            config,
            files: &paths,
        };
        notify::run(&batch, self.notify_timeout, self.api_key_env).await?;
        for chunk in ids.chunks(MAX_PAGE_SIZE) {
            let result = self.gateway.mark_processed(chunk).await?;
            if !result.unknown.is_empty() {
                tracing::warn!(agent, unknown = ?result.unknown, "the gateway did not know some delivered ids");
            }
            tracing::debug!(
                agent,
                processed = result.processed.len(),
                already_processed = result.already_processed.len(),
                "marked processed"
            );
        }
        Ok(())
    }
}

/// An item's id and file name, checked against the agent it was listed under.
fn head(agent: &str, item: &RawValue) -> anyhow::Result<(String, String)> {
    let head: ItemHead = serde_json::from_str(item.get())
        .map_err(|e| anyhow::anyhow!("an item without a string id: {e}"))?;
    let name = inbox::file_name(agent, &head.id)?;
    Ok((head.id, name))
}
