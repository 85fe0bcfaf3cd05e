//! `orderflow`: the platform binary. Runs the platform, inspects topics and dead letters,
//! describes topologies and runs benchmarks.

mod allocator;
mod commands;
mod config;
mod log_bridge;
mod platform_config;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "orderflow",
    version,
    about = "Event-driven order management on a Kafka-Streams-style runtime"
)]
struct Cli {
    /// Configuration file (TOML); see deploy/orderflow.example.toml.
    #[arg(long, global = true, env = "ORDERFLOW_CONFIG")]
    config: Option<PathBuf>,
    /// Overrides `data-dir` of the configuration.
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs the whole platform embedded in this process: the HTTP API in front of every
    /// topology on one embedded log, users in SQLite.
    Serve(commands::platform::ServeArgs),
    /// The counting demo: exactly-once counting with a dead-letter example.
    Demo(commands::demo::DemoArgs),
    /// Lists, describes and tails topics (like kcat and kafka-topics).
    #[command(subcommand)]
    Topics(commands::topics::TopicsCommand),
    /// Lists dead letters and replays them to their source topic.
    #[command(subcommand)]
    Dlq(commands::dlq::DlqCommand),
    /// Describes the named topologies.
    #[command(subcommand)]
    Topology(commands::topology::TopologyCommand),
    /// Measures throughput of the runtime and the stores.
    Bench(commands::bench::BenchArgs),
    /// The counting workload used by the crash test: produces and counts until done.
    #[command(subcommand)]
    Counter(commands::counter::CounterCommand),
    /// Places orders over HTTP against a running server and reports throughput and latency.
    Loadgen(commands::loadgen::LoadgenArgs),
    /// Generated workloads through the real topologies (crash tests, benchmarks).
    #[command(subcommand)]
    Workload(commands::saga::WorkloadCommand),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = run(cli);
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let mut config = config::load(cli.config.as_deref(), std::env::vars())?;
    if let Some(data_dir) = cli.data_dir {
        config.data_dir = data_dir;
    }
    init_tracing(&config.log.level);
    match cli.command {
        Command::Serve(args) => commands::platform::serve(&config, &args),
        Command::Demo(args) => commands::demo::run(&config, &args),
        Command::Topics(command) => commands::topics::run(&config, command),
        Command::Dlq(command) => commands::dlq::run(&config, command),
        Command::Topology(command) => commands::topology::run(command),
        Command::Bench(args) => commands::bench::run(&config, &args),
        Command::Counter(command) => commands::counter::run(&config, command),
        Command::Workload(command) => commands::saga::run(&config, command),
        Command::Loadgen(args) => commands::loadgen::run(&args),
    }
}

fn init_tracing(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
    log_bridge::install();
}
