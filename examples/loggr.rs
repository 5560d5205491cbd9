//! `loggr`: the all-in-one daemon. With no configuration it receives syslog over RELP, TCP and
//! UDP, tags and parses it (BuzzSaw's filters and grok), stores it in an embedded SQLite
//! database and serves the web frontend and `/metrics` — one process, nothing to install.
//!
//! ```text
//! cargo run --release --example loggr                                # everything, zero config
//! cargo run --release --example loggr -- --config pipeline.toml      # any pipeline (RabbitMQ, PostgreSQL…)
//! cargo run --release --example loggr -- --print-config              # the zero-config pipeline
//! printf 'hello\n' | cargo run --release --example loggr -- --stdin  # stdin → JSON lines on stdout
//! cargo run --release --example loggr -- --list                      # the registered plugin types
//! cargo run --release --example loggr -- query --tag auth_failure     # stored events, newest first
//! ```
//!
//! SIGINT or SIGTERM stops reading and drains what is in flight (within the grace period).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser as _;
use loggr::core::config::PipelineConfig;
use loggr::PipelineBuilder;

/// The zero-config pipeline.
const BUNDLED: &str = include_str!("config/loggr.toml");

/// stdin → JSON lines on stdout.
const STDIN_CONFIG: &str = r#"
[[sources]]
type = "stdin"

[[sinks]]
type = "stdout"
"#;

/// loggr, all in one process: syslog over RELP (127.0.0.1:2514), TCP and UDP (127.0.0.1:5514)
/// → BuzzSaw tags and grok fields → an embedded SQLite store (loggr-data/loggr.db), with the
/// web frontend (127.0.0.1:8080) and Prometheus /metrics (127.0.0.1:9464). Every address and
/// the data directory can be changed with LOGGR_RELP, LOGGR_TCP, LOGGR_UDP, LOGGR_METRICS and
/// LOGGR_DATA, or the whole pipeline replaced with --config.
#[derive(clap::Parser)]
#[command(version, about, long_about)]
struct Args {
    /// A pipeline configuration (TOML) instead of the zero-config one: any sources, filters
    /// and sinks, e.g. RabbitMQ between stages and PostgreSQL.
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Read stdin, write JSON lines to stdout (a quick look at what loggr makes of lines).
    #[arg(long, conflicts_with = "config")]
    stdin: bool,
    /// Serve /metrics and /healthz here (overrides the configuration's `[metrics]`).
    #[arg(long, value_name = "ADDR")]
    metrics: Option<SocketAddr>,
    /// Print the zero-config pipeline and exit.
    #[arg(long)]
    print_config: bool,
    /// Print the registered source, filter and sink types, then exit.
    #[arg(long)]
    list: bool,
    /// Check the configuration and exit.
    #[arg(long)]
    check: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Print stored events, newest first, from the embedded store (also while the daemon
    /// runs): `loggr query --tag auth_failure`.
    Query(QueryArgs),
}

#[derive(clap::Args)]
struct QueryArgs {
    /// The store (default: the zero-config one, $LOGGR_DATA/loggr.db).
    #[arg(long)]
    db: Option<PathBuf>,
    /// Only this host.
    #[arg(long)]
    host: Option<String>,
    /// Only this program.
    #[arg(long)]
    program: Option<String>,
    /// Only events with this tag.
    #[arg(long)]
    tag: Option<String>,
    /// Only this severity or worse (0 emerg … 7 debug).
    #[arg(long)]
    severity: Option<i16>,
    /// Only messages containing this text (case-insensitive).
    #[arg(long)]
    text: Option<String>,
    /// At most this many events.
    #[arg(long, default_value_t = 20)]
    limit: u32,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    loggr::daemon::init_logging();
    let args = Args::parse();
    let registry = loggr::registry()?;
    if args.list {
        let join = |names: Vec<&str>| names.join(", ");
        eprintln!("sources: {}", join(registry.source_types().collect()));
        eprintln!("filters: {}", join(registry.filter_types().collect()));
        eprintln!("sinks:   {}", join(registry.sink_types().collect()));
        eprintln!("packers: {}", join(registry.packer_types().collect()));
        return Ok(());
    }
    if let Some(Command::Query(query)) = args.command {
        return print_events(query).await;
    }
    if args.print_config {
        std::io::Write::write_all(&mut std::io::stdout(), BUNDLED.as_bytes())?;
        return Ok(());
    }
    let config = match (&args.config, args.stdin) {
        (Some(path), _) => PipelineConfig::from_file(path)?,
        (None, true) => PipelineConfig::from_toml(STDIN_CONFIG)?,
        (None, false) => PipelineConfig::from_toml(BUNDLED)?,
    };
    let metrics_address = args.metrics.or(config.metrics.as_ref().map(|m| m.address));
    let where_ = describe(&config);
    let pipeline = PipelineBuilder::from_config(config, &registry)?.build()?;
    if args.check {
        eprintln!("configuration is valid: {pipeline:?}");
        return Ok(());
    }
    let shutdown = loggr::daemon::shutdown_on_signals();
    let mut lines = where_;
    if let Some(address) = metrics_address {
        let (bound, _task) =
            loggr::http::serve_metrics(address, pipeline.metrics().clone(), shutdown.clone())
                .await?;
        lines.push(format!("metrics   http://{bound}/metrics"));
    }
    if !args.stdin {
        eprintln!("loggr is running:\n  {}", lines.join("\n  "));
    }
    pipeline.run(shutdown).await?;
    Ok(())
}

/// One line per listener and store of the configuration: where to send logs, where they go.
fn describe(config: &PipelineConfig) -> Vec<String> {
    let field = |table: &toml::Table, key: &str| {
        table
            .get(key)
            .and_then(|v| v.as_str())
            .unwrap_or("?")
            .to_owned()
    };
    let mut lines = Vec::new();
    for source in &config.sources {
        if matches!(source.type_name.as_str(), "relp" | "tcp" | "udp") {
            lines.push(format!(
                "{:<9} {}",
                source.type_name,
                field(&source.table, "address")
            ));
        }
    }
    for sink in &config.sinks {
        match sink.type_name.as_str() {
            "sqlite" | "file" => lines.push(format!(
                "{:<9} {}",
                sink.type_name,
                field(&sink.table, "path")
            )),
            other => lines.push(format!("sink      {other}")),
        }
    }
    lines
}

/// `loggr query`: the newest matching events, one line each, with their tags.
async fn print_events(args: QueryArgs) -> anyhow::Result<()> {
    use loggr::store::{EventFilter, SqliteConfig, SqliteStore, Store};
    let path = args.db.unwrap_or_else(|| {
        let data = std::env::var_os("LOGGR_DATA").unwrap_or_else(|| "loggr-data".into());
        PathBuf::from(data).join("loggr.db")
    });
    anyhow::ensure!(
        path.exists(),
        "{} does not exist: start `loggr` first, or give --db",
        path.display()
    );
    let store = SqliteStore::open(SqliteConfig::new(&path))?;
    let filter = EventFilter {
        host: args.host,
        program: args.program,
        tag: args.tag,
        severity: args.severity,
        text: args.text,
        ..EventFilter::default()
    };
    let mut out = std::io::stdout().lock();
    for event in store.events(&filter, args.limit).await? {
        let program = match (&event.program, &event.pid) {
            (Some(program), Some(pid)) => format!("{program}[{pid}]"),
            (Some(program), None) => program.clone(),
            _ => "-".to_owned(),
        };
        let tags = if event.tags.is_empty() {
            String::new()
        } else {
            format!("  [{}]", event.tags.join(", "))
        };
        std::io::Write::write_all(
            &mut out,
            format!(
                "{} {} {}: {}{tags}\n",
                event.logtime,
                event.hostname.as_deref().unwrap_or("-"),
                program,
                printable(event.message.as_deref().unwrap_or("")),
            )
            .as_bytes(),
        )?;
    }
    Ok(())
}

/// `text` with control characters (a terminal's escape sequences) shown as escapes.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}
