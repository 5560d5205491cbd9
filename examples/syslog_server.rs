//! `syslog_server`: receive syslog over RELP, TCP and UDP, parse, filter, and hand events to
//! the sinks, acknowledging RELP senders only after every sink durably took their messages.
//!
//! ```text
//! cargo run --release --example syslog_server -- --tcp 127.0.0.1:5514 --out /var/tmp/events.jsonl
//! cargo run --release --example syslog_server -- --config examples/config/syslog_server.toml
//! ```
//!
//! SIGTERM or SIGINT: stop accepting, answer what is outstanding (RELP `serverclose`), drain
//! within the grace period, exit.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser as _;
use loggr::core::config::PipelineConfig;
use loggr::sinks::{FileSink, FileSinkConfig, Fsync, LineFormat, StdoutSink};
use loggr::sources::{
    InputFormat, RelpConfig, RelpSource, TcpConfig, TcpSource, UdpConfig, UdpSource,
};
use loggr::PipelineBuilder;

/// Receive syslog over RELP, TCP and UDP and store it without losing a message.
#[derive(clap::Parser)]
#[command(version, about)]
struct Args {
    /// A TOML configuration (sources, filters, sinks, [pipeline], [metrics]); the flags below
    /// add to it.
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Listen for RELP here (acknowledged only after the sinks committed). Repeatable.
    #[arg(long, value_name = "ADDR")]
    relp: Vec<SocketAddr>,
    /// Listen for syslog over TCP here (LF and octet-counted framing, detected per frame).
    /// Repeatable.
    #[arg(long, value_name = "ADDR")]
    tcp: Vec<SocketAddr>,
    /// Listen for syslog over UDP here. Repeatable.
    #[arg(long, value_name = "ADDR")]
    udp: Vec<SocketAddr>,
    /// Append events as JSON lines to this file, fsynced before acknowledging. Without it and
    /// without sinks in the configuration, events go to stdout.
    #[arg(long, value_name = "PATH")]
    out: Option<PathBuf>,
    /// Line format of --out: json (loggr's events, every field) or rsyslog (RSYSLOG_FileFormat).
    #[arg(long, value_parser = parse_line_format, default_value = "json")]
    out_format: LineFormat,
    /// When --out is fdatasync'ed: always (before every acknowledgement: survives power loss)
    /// or never (the OS decides: survives a crash of loggr only).
    #[arg(long, value_parser = parse_fsync, default_value = "always")]
    out_fsync: Fsync,
    /// RELP: outstanding transactions per session (more lets a sender pipeline more messages
    /// into each fsync).
    #[arg(long, default_value_t = 128)]
    relp_window: usize,
    /// Message format of the flag listeners: auto, rfc5424, rfc3164, rfc3339, json or raw.
    #[arg(long, default_value = "auto")]
    format: InputFormat,
    /// Serve Prometheus /metrics and /healthz here.
    #[arg(long, value_name = "ADDR")]
    metrics: Option<SocketAddr>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    loggr::daemon::init_logging();
    let args = Args::parse();
    let config = match &args.config {
        Some(path) => PipelineConfig::from_file(path)?,
        None => PipelineConfig::default(),
    };
    let metrics_address = args.metrics.or(config.metrics.as_ref().map(|m| m.address));
    let has_sinks = !config.sinks.is_empty();
    let registry = loggr::registry()?;
    let mut builder = PipelineBuilder::from_config(config, &registry)?;
    for address in &args.relp {
        let config = RelpConfig {
            format: args.format,
            window: args.relp_window,
            ..RelpConfig::new(*address)
        };
        builder = builder.source(format!("relp:{address}"), RelpSource::new(config));
    }
    for address in &args.tcp {
        let config = TcpConfig {
            format: args.format,
            ..TcpConfig::new(*address)
        };
        builder = builder.source(format!("tcp:{address}"), TcpSource::new(config));
    }
    for address in &args.udp {
        let config = UdpConfig {
            format: args.format,
            ..UdpConfig::new(*address)
        };
        builder = builder.source(format!("udp:{address}"), UdpSource::new(config));
    }
    if let Some(path) = args.out {
        builder = builder.sink(
            "out",
            FileSink::new(FileSinkConfig {
                format: args.out_format,
                fsync: args.out_fsync,
                ..FileSinkConfig::new(path)
            }),
        );
    } else if !has_sinks {
        builder = builder.sink("stdout", StdoutSink::new());
    }
    let pipeline = builder.build()?;
    let shutdown = loggr::daemon::shutdown_on_signals();
    if let Some(address) = metrics_address {
        loggr::http::serve_metrics(address, pipeline.metrics().clone(), shutdown.clone()).await?;
    }
    pipeline.run(shutdown).await?;
    Ok(())
}

fn parse_line_format(name: &str) -> Result<LineFormat, String> {
    match name {
        "json" => Ok(LineFormat::Json),
        "rsyslog" => Ok(LineFormat::Rsyslog),
        other => Err(format!("unknown line format `{other}` (json or rsyslog)")),
    }
}

fn parse_fsync(name: &str) -> Result<Fsync, String> {
    match name {
        "always" => Ok(Fsync::Always),
        "never" => Ok(Fsync::Never),
        other => Err(format!("unknown fsync policy `{other}` (always or never)")),
    }
}
