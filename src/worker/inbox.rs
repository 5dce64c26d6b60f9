//! Writing items into an agent's inbox: one file per item, named by its row key.
//!
//! A file is written to a temporary name in the same directory, fsync'd, renamed over its
//! final name, and the directory is fsync'd before the agent is told: after a crash or power
//! loss either the whole file is there or the item is still pending at the gateway. Naming
//! files by row key makes a re-delivery overwrite the same file instead of adding another.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use nexus_shared::domain::item::ItemId;

/// An item's file name, `{rowKey}.json`, from its id `{agent}:{rowKey}`.
///
/// The id is parsed, not split: a row key is digits, `_` and a ULID, so no id the gateway
/// sends can name a path outside the inbox.
pub fn file_name(agent: &str, id: &str) -> anyhow::Result<String> {
    let parsed: ItemId = id
        .parse()
        .map_err(|e| anyhow::anyhow!("item id '{id}' is not an item id: {e}"))?;
    if parsed.agent.as_str() != agent {
        bail!("item id '{id}' was listed under agent '{agent}'");
    }
    Ok(format!("{}.json", parsed.row_key.as_str()))
}

/// Writes each `(file name, contents)` into `dir` (created if missing) atomically and
/// durably; returns the final paths in order.
pub fn write_files(dir: &Path, files: &[(String, String)]) -> anyhow::Result<Vec<PathBuf>> {
    if !dir.is_dir() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        // The new directories' own entries must be durable too.
        for created in dir.ancestors().skip(1).take(2) {
            sync_dir(created)?;
        }
    }
    let paths = files
        .iter()
        .map(|(name, contents)| write_one(dir, name, contents.as_bytes()))
        .collect::<anyhow::Result<Vec<_>>>()?;
    // One directory fsync makes every rename above durable.
    sync_dir(dir)?;
    Ok(paths)
}

fn write_one(dir: &Path, name: &str, contents: &[u8]) -> anyhow::Result<PathBuf> {
    let path = dir.join(name);
    // A hidden name that does not end in `.json`, so an agent never reads a partial file; one
    // left behind by a crash is harmless.
    let mut temp = tempfile::Builder::new()
        .prefix(".nexus-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    temp.write_all(contents)
        .and_then(|()| temp.as_file().sync_all())
        .with_context(|| format!("writing {}", temp.path().display()))?;
    temp.persist(&path)
        .with_context(|| format!("renaming into {}", path.display()))?;
    Ok(path)
}

fn sync_dir(dir: &Path) -> anyhow::Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("syncing directory {}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "flickclaw:1795408056465_01M83AHM4HZZWA11YDTYTZ43HS";

    #[test]
    fn a_file_is_named_by_the_row_key() {
        assert_eq!(
            file_name("flickclaw", ID).unwrap(),
            "1795408056465_01M83AHM4HZZWA11YDTYTZ43HS.json"
        );
    }

    #[test]
    fn ids_that_could_escape_the_inbox_or_the_agent_are_refused() {
        for bad in [
            "flickclaw:../../etc/passwd",
            "flickclaw:1795408056465_01M83AHM4HZZWA11YDTYTZ43HS/x",
            "flickclaw",
            "other:1795408056465_01M83AHM4HZZWA11YDTYTZ43HS",
        ] {
            assert!(file_name("flickclaw", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn writing_again_overwrites_and_leaves_no_temporary_files() {
        let dir = tempfile::tempdir().unwrap();
        let inbox = dir.path().join("inbox").join("webhooks");
        let name = file_name("flickclaw", ID).unwrap();

        write_files(&inbox, &[(name.clone(), "first".into())]).unwrap();
        let paths = write_files(&inbox, &[(name.clone(), "second".into())]).unwrap();

        assert_eq!(paths, vec![inbox.join(&name)]);
        assert_eq!(std::fs::read_to_string(&paths[0]).unwrap(), "second");
        let entries: Vec<_> = std::fs::read_dir(&inbox).unwrap().collect();
        assert_eq!(entries.len(), 1);
    }
}
