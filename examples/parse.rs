//! `parse`: read syslog messages on stdin, print one JSON object per message.
//!
//! ```text
//! cargo run --release --example parse -- [--format auto|rfc5424|rfc3164|rfc3339|json]
//!     [--year YYYY] [--tz ZONE] [--framing lf|octet] < lines
//! ```
//!
//! Each message prints `facility`, `severity`, `timestamp` (UTC), `hostname`, `app_name`,
//! `procid`, `msgid`, `structured_data` and `message` (plus `tags` and `fields` when the parser
//! set any); a message that fails prints `{"error": …, "raw": …}` and the tool goes on. The exit
//! status is 0 unless stdin cannot be read. The logic lives in `loggr::core::syslog::tool`.

use std::io::{self, BufWriter};

use clap::Parser;
use loggr::core::syslog::tool::{render, Framing, ToolOptions};
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
    render(io::stdin().lock(), &options, &mut out)?;
    Ok(())
}
