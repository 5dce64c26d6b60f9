//! The `nexus` command line.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use nexus_shared::config::Config;

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
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    nexus_shared::telemetry::init_local();
    let cli = Cli::parse();
    let mut config = Config::from_env()?;
    match cli.command {
        Command::Serve { bind, data_dir } => {
            config.bind = bind.unwrap_or(config.bind);
            config.data_dir = data_dir.unwrap_or(config.data_dir);
            nexus::serve::run(config).await
        }
    }
}
