//! `parse`: read syslog messages on stdin, print one JSON object per message.
//!
//! ```text
//! cargo run --release --example parse -- [--format auto|rfc5424|rfc3164|rfc3339|json]
//!     [--year YYYY] [--tz ZONE] [--framing lf|octet] [--buzzsaw] [--filters FILE] < lines
//! ```
//!
//! Each message prints `facility`, `severity`, `timestamp` (UTC), `hostname`, `app_name`,
//! `procid`, `msgid`, `structured_data` and `message` (plus `tags` and `fields` when the parser
//! set any); a message that fails prints `{"error": …, "raw": …}` and the tool goes on. The exit
//! status is 0 unless stdin cannot be read. The logic lives in `loggr::core::syslog::tool`.
//!
//! `--buzzsaw` puts every event through BuzzSaw's voting stack with its defaults (the `buzzsaw`
//! filter), `--filters FILE` through the `[[filters]]` tables of a TOML file (after BuzzSaw's
//! stack when both are given). Then each object also has `tags` (sorted), `fields`, and
//! `"dropped": true` for an event a filter discarded.

use std::io::{self, BufWriter};

use std::path::PathBuf;

use clap::Parser;
use loggr::core::config::ComponentConfig;
use loggr::core::syslog::tool::{
    build_filters, filters_from_toml, render, render_with_filters, Framing, ToolOptions,
};
use loggr::core::syslog::{Format, SyslogOptions};

/// Parse syslog messages from stdin and print them as JSON, one object per line.
#[derive(Parser, Debug)]
#[command(name = "parse")]
struct Args {
    /// The message format.
    #[arg(long, default_value = "auto", value_parser = ["auto", "rfc5424", "rfc3164", "rfc3339", "json"])]
    format: String,
    /// The year of timestamps that carry none (default: the year nearest to now).
    #[arg(long)]
    year: Option<i16>,
    /// The time zone of timestamps without offset: IANA name or `UTC` (default: local).
    #[arg(long)]
    tz: Option<String>,
    /// How messages are delimited.
    #[arg(long, default_value = "lf", value_parser = ["lf", "octet"])]
    framing: String,
    /// Put every event through BuzzSaw's voting filter stack, with its defaults.
    #[arg(long)]
    buzzsaw: bool,
    /// Put every event through the `[[filters]]` of this TOML file.
    #[arg(long, value_name = "FILE")]
    filters: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let options = ToolOptions {
        format: args.format.parse::<Format>().map_err(anyhow::Error::msg)?,
        syslog: SyslogOptions {
            year: args.year,
            timezone: args.tz,
            ..SyslogOptions::default()
        },
        framing: args
            .framing
            .parse::<Framing>()
            .map_err(anyhow::Error::msg)?,
        received_at: None,
    };
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    if !args.buzzsaw && args.filters.is_none() {
        render(io::stdin().lock(), &options, &mut out)?;
        return Ok(());
    }
    let registry = loggr::registry()?;
    let mut filters = Vec::new();
    if args.buzzsaw {
        let buzzsaw = ComponentConfig {
            type_name: "buzzsaw".into(),
            name: None,
            table: Default::default(),
        };
        filters.extend(build_filters(vec![buzzsaw], &registry)?);
    }
    if let Some(path) = &args.filters {
        let text = std::fs::read_to_string(path)
            .map_err(|error| anyhow::anyhow!("cannot read {}: {error}", path.display()))?;
        filters.extend(filters_from_toml(&text, &registry)?);
    }
    render_with_filters(io::stdin().lock(), &options, &filters, &mut out)?;
    Ok(())
}
