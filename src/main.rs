//! The `nexus` command line.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use nexus_shared::config::Config;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "nexus",
    version,
    about = "Nexus Webhooks: inbound and outbound webhooks"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole gateway locally on SQLite (configuration: environment, see README).
    Serve {
        /// Address to listen on (overrides NEXUS_BIND; default 127.0.0.1:8080).
        #[arg(long)]
        bind: Option<SocketAddr>,
        /// Data directory (overrides NEXUS_DATA_DIR; default ./nexus-data).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Deliver pending items into agents' workspaces and notify them (see README, Local worker).
    Worker {
        /// The worker's TOML config file.
        #[arg(long, env = "NEXUS_WORKER_CONFIG", default_value = "nexus-worker.toml")]
        config: PathBuf,
        /// Poll once through every page, then exit; non-zero if anything failed (for cron).
        #[arg(long)]
        once: bool,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    nexus_shared::telemetry::init_local();
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { bind, data_dir } => {
            // Read here, not for every command: the worker has its own config file.
            let mut config = Config::from_env()?;
            config.bind = bind.unwrap_or(config.bind);
            config.data_dir = data_dir.unwrap_or(config.data_dir);
            nexus::serve::run(config).await
        }
        Command::Worker { config, once } => {
            nexus::worker::run(nexus::worker::Options { config, once }).await
        }
    }
}
