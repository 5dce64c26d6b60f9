//! The worker's TOML configuration, checked whole at start-up.
//!
//! Every error names the field it is about, so a bad file is fixed in one look. Relative
//! paths (`workspace`, `api_key_file`) are resolved against the config file's directory, so
//! the same file works from a shell, cron or systemd.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use nexus_shared::domain::ids::AgentId;
use reqwest::Url;
use secrecy::SecretString;
use serde::Deserialize;

/// Largest `page_size`: the gateway's default `NEXUS_PENDING_MAX_PAGE_SIZE`, which is also
/// the most ids one `DELETE /api/webhook/items` takes.
pub const MAX_PAGE_SIZE: usize = 1000;

/// The worker's settings, validated.
#[derive(Debug)]
pub struct WorkerConfig {
    /// The gateway's base URL; API paths are appended to it (a path such as a stage is kept).
    pub gateway: Url,
    /// The consumer API key. `SecretString` so it can never be printed by accident.
    pub api_key: SecretString,
    /// The environment variable the key may come from; removed from notify commands' env.
    pub api_key_env: String,
    pub poll_interval: Duration,
    pub page_size: usize,
    pub notify_timeout: Duration,
    pub request_timeout: Duration,
    /// Longest wait between attempts while the gateway is down.
    pub max_backoff: Duration,
    /// The configured agents by id.
    pub agents: BTreeMap<String, AgentConfig>,
}

/// Where one agent's items go and how the agent hears about them.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// The agent's workspace, absolute and canonical.
    pub workspace: PathBuf,
    /// The command run once per batch: program and arguments.
    pub notify: Vec<String>,
}

impl AgentConfig {
    /// Where item files are written: `{workspace}/inbox/webhooks`.
    pub fn inbox_dir(&self) -> PathBuf {
        self.workspace.join("inbox").join("webhooks")
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    gateway: String,
    api_key_env: Option<String>,
    api_key_file: Option<PathBuf>,
    poll_interval: Option<String>,
    page_size: Option<usize>,
    notify_timeout: Option<String>,
    request_timeout: Option<String>,
    max_backoff: Option<String>,
    #[serde(default)]
    agents: BTreeMap<String, RawAgent>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAgent {
    workspace: PathBuf,
    notify: Vec<String>,
}

impl WorkerConfig {
    /// Reads and validates the file at `path`, taking the API key from the environment.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the worker config {}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::parse(&text, base, |name| std::env::var(name).ok())
            .with_context(|| format!("invalid worker config {}", path.display()))
    }

    /// Parses `text`; relative paths are taken from `base`, variables from `env`.
    pub fn parse(
        text: &str,
        base: &Path,
        env: impl Fn(&str) -> Option<String>,
    ) -> anyhow::Result<Self> {
        let raw: RawConfig = toml::from_str(text)?;
        let gateway = parse_gateway(&raw.gateway)?;
        let api_key_env = raw
            .api_key_env
            .unwrap_or_else(|| "NEXUS_API_KEY".to_owned());
        let api_key = match raw.api_key_file {
            Some(file) => read_key_file(&base.join(file))?,
            None => match env(&api_key_env) {
                Some(key) if !key.trim().is_empty() => SecretString::from(key.trim().to_owned()),
                _ => bail!(
                    "api_key_env: the environment variable {api_key_env} is not set \
                     (set it, or point api_key_file at a file holding the key)"
                ),
            },
        };
        let poll_interval = duration("poll_interval", raw.poll_interval, "30s")?;
        let max_backoff = duration("max_backoff", raw.max_backoff, "5m")?;
        if max_backoff < poll_interval {
            bail!("max_backoff: must be at least poll_interval");
        }
        let page_size = raw.page_size.unwrap_or(100);
        if !(1..=MAX_PAGE_SIZE).contains(&page_size) {
            bail!("page_size: must be between 1 and {MAX_PAGE_SIZE}");
        }
        if raw.agents.is_empty() {
            bail!("agents: configure at least one agent ([agents.<id>] with workspace and notify)");
        }
        let agents = raw
            .agents
            .into_iter()
            .map(|(id, agent)| Ok((id.clone(), check_agent(&id, agent, base)?)))
            .collect::<anyhow::Result<_>>()?;
        Ok(Self {
            gateway,
            api_key,
            api_key_env,
            poll_interval,
            page_size,
            notify_timeout: duration("notify_timeout", raw.notify_timeout, "5m")?,
            request_timeout: duration("request_timeout", raw.request_timeout, "30s")?,
            max_backoff,
            agents,
        })
    }
}

fn parse_gateway(value: &str) -> anyhow::Result<Url> {
    let mut url = Url::parse(value)
        .map_err(|e| anyhow::anyhow!("gateway: {e} (e.g. http://127.0.0.1:8080)"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        bail!("gateway: must be an http:// or https:// URL");
    }
    // `Url::join` replaces the last path segment unless the path ends in '/'.
    if !url.path().ends_with('/') {
        url.set_path(&format!("{}/", url.path()));
    }
    Ok(url)
}

fn read_key_file(path: &Path) -> anyhow::Result<SecretString> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("api_key_file: reading {}", path.display()))?;
    if text.trim().is_empty() {
        bail!("api_key_file: {} is empty", path.display());
    }
    Ok(SecretString::from(text.trim().to_owned()))
}

fn duration(field: &str, value: Option<String>, default: &str) -> anyhow::Result<Duration> {
    let text = value.as_deref().unwrap_or(default);
    let parsed = humantime::parse_duration(text)
        .map_err(|e| anyhow::anyhow!("{field}: '{text}' is not a duration like 30s or 5m ({e})"))?;
    if parsed.is_zero() {
        bail!("{field}: must be longer than zero");
    }
    Ok(parsed)
}

fn check_agent(id: &str, raw: RawAgent, base: &Path) -> anyhow::Result<AgentConfig> {
    AgentId::parse(id)
        .map_err(|e| anyhow::anyhow!("agents.{id}: not an agent id: {}", e.reason))?;
    let path = base.join(&raw.workspace);
    let workspace = path
        .canonicalize()
        .with_context(|| format!("agents.{id}.workspace: {} does not exist", path.display()))?;
    if !workspace.is_dir() {
        bail!(
            "agents.{id}.workspace: {} is not a directory",
            path.display()
        );
    }
    match raw.notify.first() {
        None => {
            bail!("agents.{id}.notify: must name a command, e.g. [\"openclaw\", \"sessions\", …]")
        }
        Some(program) if program.is_empty() => {
            bail!("agents.{id}.notify: the program (first element) must not be empty")
        }
        Some(_) => {}
    }
    Ok(AgentConfig {
        workspace,
        notify: raw.notify,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn parse(text: &str, base: &Path) -> anyhow::Result<WorkerConfig> {
        WorkerConfig::parse(text, base, |name| {
            (name == "NEXUS_API_KEY").then(|| "the-key".to_owned())
        })
    }

    fn error(text: &str, base: &Path) -> String {
        format!("{:#}", parse(text, base).unwrap_err())
    }

    fn minimal(workspace: &str) -> String {
        format!(
            "gateway = \"http://127.0.0.1:8080\"\n\
             [agents.flickclaw]\nworkspace = \"{workspace}\"\nnotify = [\"true\"]\n"
        )
    }

    #[test]
    fn a_minimal_file_takes_the_documented_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let config = parse(&minimal(dir.path().to_str().unwrap()), dir.path()).unwrap();

        assert_eq!(config.gateway.as_str(), "http://127.0.0.1:8080/");
        assert_eq!(config.api_key.expose_secret(), "the-key");
        assert_eq!(config.poll_interval, Duration::from_secs(30));
        assert_eq!(config.page_size, 100);
        assert_eq!(config.notify_timeout, Duration::from_secs(300));
        assert_eq!(config.max_backoff, Duration::from_secs(300));
        let agent = &config.agents["flickclaw"];
        assert_eq!(agent.workspace, dir.path().canonicalize().unwrap());
        assert!(agent.inbox_dir().ends_with("inbox/webhooks"));
    }

    #[test]
    fn relative_paths_are_taken_from_the_config_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("agent")).unwrap();
        std::fs::write(dir.path().join("key"), "from-file\n").unwrap();
        let text = format!("api_key_file = \"key\"\n{}", minimal("agent"));

        let config = parse(&text, dir.path()).unwrap();

        assert_eq!(config.api_key.expose_secret(), "from-file");
        let expected = dir.path().join("agent").canonicalize().unwrap();
        assert_eq!(config.agents["flickclaw"].workspace, expected);
    }

    #[test]
    fn a_gateway_path_is_kept_for_joining() {
        let dir = tempfile::tempdir().unwrap();
        let text = minimal(dir.path().to_str().unwrap())
            .replace("http://127.0.0.1:8080", "https://x.example/Prod");
        let config = parse(&text, dir.path()).unwrap();
        let url = config.gateway.join("api/webhook/pending").unwrap();
        assert_eq!(url.as_str(), "https://x.example/Prod/api/webhook/pending");
    }

    #[test]
    fn unknown_keys_are_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let top = format!(
            "pol_interval = \"1s\"\n{}",
            minimal(dir.path().to_str().unwrap())
        );
        assert!(error(&top, dir.path()).contains("pol_interval"));
        let nested = format!("{}comand = []\n", minimal(dir.path().to_str().unwrap()));
        assert!(error(&nested, dir.path()).contains("comand"));
    }

    #[test]
    fn bad_values_name_their_field() {
        let dir = tempfile::tempdir().unwrap();
        let ok = minimal(dir.path().to_str().unwrap());
        let cases = [
            (ok.replace("[\"true\"]", "[]"), "agents.flickclaw.notify"),
            (
                ok.replace(dir.path().to_str().unwrap(), "/no/such/dir"),
                "agents.flickclaw.workspace",
            ),
            (ok.replace("flickclaw", "Flick Claw"), "agents.Flick Claw"),
            (ok.replace("http://127.0.0.1:8080", "ftp://host"), "gateway"),
            (format!("poll_interval = \"soon\"\n{ok}"), "poll_interval"),
            (format!("notify_timeout = \"0s\"\n{ok}"), "notify_timeout"),
            (format!("page_size = 0\n{ok}"), "page_size"),
            (format!("page_size = 1001\n{ok}"), "page_size"),
            (format!("max_backoff = \"1s\"\n{ok}"), "max_backoff"),
            (format!("api_key_env = \"NOPE\"\n{ok}"), "api_key_env"),
            (format!("api_key_file = \"missing\"\n{ok}"), "api_key_file"),
            ("gateway = \"http://h\"\n".to_owned(), "agents"),
        ];
        for (text, field) in cases {
            let message = error(&text, dir.path());
            assert!(message.contains(field), "{field}: {message}");
        }
    }

    #[test]
    fn the_key_is_not_printed_with_the_config() {
        let dir = tempfile::tempdir().unwrap();
        let config = parse(&minimal(dir.path().to_str().unwrap()), dir.path()).unwrap();
        assert!(!format!("{config:?}").contains("the-key"));
    }
}
