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

use std::time::Duration;

use anyhow::Context as _;
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
    /// Serve the web frontend here (over the pipeline's store; default 127.0.0.1:8080, or
    /// $LOGGR_WEB).
    #[arg(long, value_name = "ADDR")]
    web: Option<SocketAddr>,
    /// Do not serve the web frontend.
    #[arg(long)]
    no_web: bool,
    /// Do not run the reports on their schedule.
    #[arg(long)]
    no_reports: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Print stored events, newest first, from the embedded store (also while the daemon
    /// runs): `loggr query --tag auth_failure`.
    Query(QueryArgs),
    /// Run BuzzSaw's reports (Kernel, AuthFailure daily; Sleep weekly) over the embedded
    /// store now and print them: those due, or every one with --all.
    Report(ReportArgs),
}

#[derive(clap::Args)]
struct ReportArgs {
    /// The store (default: the zero-config one, $LOGGR_DATA/loggr.db).
    #[arg(long)]
    db: Option<PathBuf>,
    /// Run every report, due or not.
    #[arg(long)]
    all: bool,
    /// Print what would run; render and record nothing.
    #[arg(long)]
    dryrun: bool,
    /// Only the reports of these periods (hourly, daily, weekly, monthly).
    periods: Vec<loggr_reports::Period>,
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
    match args.command {
        Some(Command::Query(query)) => return print_events(query).await,
        Some(Command::Report(report)) => return print_reports(report).await,
        None => {}
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
    let database = (!args.stdin).then(|| store_setting(&config)).flatten();
    let pipeline = PipelineBuilder::from_config(config, &registry)?.build()?;
    if args.check {
        eprintln!("configuration is valid: {pipeline:?}");
        return Ok(());
    }
    let shutdown = loggr::daemon::shutdown_on_signals();
    let mut lines = where_;
    let mut metrics_bound = None;
    if let Some(address) = metrics_address {
        let (bound, _task) =
            loggr::http::serve_metrics(address, pipeline.metrics().clone(), shutdown.clone())
                .await?;
        lines.push(format!("metrics   http://{bound}/metrics"));
        metrics_bound = Some(bound);
    }
    if let Some(database) = &database {
        if !args.no_web {
            let address = match args.web {
                Some(address) => address,
                None => std::env::var("LOGGR_WEB")
                    .unwrap_or_else(|_| "127.0.0.1:8080".into())
                    .parse()?,
            };
            lines.extend(serve_web(database, address, metrics_bound, shutdown.clone()).await?);
        }
        if !args.no_reports {
            let out = data_dir(database).join("reports.txt");
            lines.push(format!(
                "reports   {} (Kernel, AuthFailure daily; Sleep weekly)",
                out.display()
            ));
            let reporter = reporter(database)?;
            tokio::spawn(report_on_schedule(
                reporter,
                database.clone(),
                out,
                shutdown.clone(),
            ));
        }
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
    let path = args.db.unwrap_or_else(|| data_dir("").join("loggr.db"));
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

/// The store the pipeline writes: the first `sqlite` sink's `path` or `postgres` sink's `url`.
fn store_setting(config: &PipelineConfig) -> Option<String> {
    config.sinks.iter().find_map(|sink| {
        let key = match sink.type_name.as_str() {
            "sqlite" => "path",
            "postgres" => "url",
            _ => return None,
        };
        sink.table.get(key)?.as_str().map(str::to_owned)
    })
}

/// Where the daemon keeps its own files: beside an SQLite store, else `$LOGGR_DATA`.
fn data_dir(database: &str) -> PathBuf {
    if !loggr::store::is_postgres(database) {
        let path = std::path::Path::new(database.strip_prefix("sqlite:").unwrap_or(database));
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            return dir.to_owned();
        }
    }
    PathBuf::from(std::env::var_os("LOGGR_DATA").unwrap_or_else(|| "loggr-data".into()))
}

/// The web frontend's admin password hash: `$LOGGR_WEB_ADMIN_HASH`, else the one kept in the
/// data directory — made at the first start from a random password printed once.
fn admin_hash(dir: &std::path::Path, lines: &mut Vec<String>) -> anyhow::Result<String> {
    if let Ok(hash) = std::env::var("LOGGR_WEB_ADMIN_HASH") {
        return Ok(hash);
    }
    let file = dir.join("web-admin.hash");
    if let Ok(hash) = std::fs::read_to_string(&file) {
        lines.push(format!(
            "          user admin, the password printed at the first start (delete {} for a new one)",
            file.display()
        ));
        return Ok(hash.trim().to_owned());
    }
    let password = loggr_web::auth::random_hex::<12>()?;
    let hash = loggr_web::auth::hash_password(&password)?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&file)
            .with_context(|| format!("creating {}", file.display()))?;
        out.write_all(hash.as_bytes())?;
    }
    lines.push(format!(
        "          user admin, password {password} (shown once; its hash is in {})",
        file.display()
    ));
    Ok(hash)
}

/// Serves the web frontend over `database` on `address` until `shutdown`.
async fn serve_web(
    database: &str,
    address: SocketAddr,
    metrics: Option<SocketAddr>,
    shutdown: loggr::CancellationToken,
) -> anyhow::Result<Vec<String>> {
    let mut lines = Vec::new();
    let hash = admin_hash(&data_dir(database), &mut lines)?;
    // Plain HTTP on localhost: put a TLS proxy in front before exposing it.
    let mut toml = format!(
        "listen = {}\ndatabase_url = {}\nsecure_cookies = false\n",
        toml_string(&address.to_string()),
        toml_string(database),
    );
    // The status page watches this daemon's own /metrics.
    if let Some(metrics) = metrics {
        toml.push_str(&format!(
            "[status]\ncomponents = [{{ name = \"loggr\", metrics_url = {} }}]\n",
            toml_string(&format!("http://{metrics}/metrics"))
        ));
    }
    toml.push_str(&format!(
        "[[users]]\nname = \"admin\"\npassword_hash = {}\nrole = \"admin\"\n",
        toml_string(&hash)
    ));
    let config = loggr_web::WebConfig::from_toml_str(&toml)?;
    let state = loggr_web::AppState::new(config)?;
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("the web frontend cannot listen on {address}"))?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move {
        let served = axum::serve(listener, loggr_web::router(state))
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await;
        if let Err(error) = served {
            tracing::error!(%error, "The web frontend failed");
        }
    });
    lines.insert(0, format!("web       http://{bound}/"));
    Ok(lines)
}

/// The zero-config reports over `database`: Kernel and AuthFailure daily, Sleep weekly, in
/// the local time zone, printed (never mailed).
fn reporter(database: &str) -> anyhow::Result<loggr_reports::Reporter> {
    let toml = format!("database = {}\n{REPORTS}", toml_string(database));
    let config = loggr_reports::ReporterConfig::from_toml(&toml)?;
    Ok(loggr_reports::Reporter::new(config)?)
}

const REPORTS: &str = r#"
timezone = "local"

[[daily]]
name = "Kernel"
kind = "kernel"

[[daily]]
name = "AuthFailure"
kind = "auth_failure"

[[weekly]]
name = "Sleep"
kind = "sleep"
"#;

/// Every 5 minutes, runs the reports that are due and appends them to `out`.
async fn report_on_schedule(
    reporter: loggr_reports::Reporter,
    database: String,
    out: PathBuf,
    shutdown: loggr::CancellationToken,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(300));
    // Opened once (at the first tick that can), then kept.
    let mut opened: Option<std::sync::Arc<dyn loggr::store::Store>> = None;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let store = match &opened {
            Some(store) => store.clone(),
            None => match loggr::store::open(&database, "loggr-reports") {
                Ok(store) => opened.insert(store).clone(),
                Err(error) => {
                    tracing::warn!(%error, "The reports cannot open the store");
                    continue;
                }
            },
        };
        let mut text: Vec<u8> = Vec::new();
        match reporter
            .run_due(&*store, jiff::Timestamp::now(), &mut text)
            .await
        {
            Ok(summary) => {
                for (period, name, error) in &summary.failed {
                    tracing::warn!(%period, %name, %error, "A report failed");
                }
                if !summary.ran.is_empty() {
                    let written = std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&out)
                        .and_then(|mut file| std::io::Write::write_all(&mut file, &text));
                    match written {
                        Ok(()) => {
                            tracing::info!(reports = summary.ran.len(), file = %out.display(), "Reports written")
                        }
                        Err(error) => {
                            tracing::warn!(%error, file = %out.display(), "Cannot write the reports")
                        }
                    }
                }
            }
            Err(error) => tracing::warn!(%error, "The reports failed"),
        }
    }
}

/// `loggr report`: runs the zero-config reports over the embedded store now.
async fn print_reports(args: ReportArgs) -> anyhow::Result<()> {
    let path = args.db.unwrap_or_else(|| data_dir("").join("loggr.db"));
    anyhow::ensure!(
        path.exists(),
        "{} does not exist: start `loggr` first, or give --db",
        path.display()
    );
    let database = path.display().to_string();
    let reporter = reporter(&database)?;
    let store = loggr::store::open(&database, "loggr-reports")?;
    let options = loggr_reports::RunOptions {
        all: args.all,
        dryrun: args.dryrun,
        periods: args.periods,
        now: jiff::Timestamp::now(),
    };
    let mut stdout = std::io::stdout();
    let summary = reporter.run(&*store, &options, &mut stdout).await?;
    for (period, name, error) in &summary.failed {
        tracing::error!(%period, %name, %error, "A report failed");
    }
    anyhow::ensure!(summary.failed.is_empty(), "some reports failed");
    Ok(())
}

/// `text` as a TOML basic string (a JSON string literal is one).
fn toml_string(text: &str) -> String {
    serde_json::Value::from(text).to_string()
}
