//! `loggen`: a syslog load generator and loss checker.
//!
//! Every message carries the run id and a sequence number, so `check` can tell, from what a
//! sink stored, how many messages were lost, duplicated or unexpected.
//!
//! ```text
//! # 1,000,000 RFC 5424 messages of 200 bytes over 4 TCP connections, octet-counted
//! cargo run --release --example loggen -- send --target 127.0.0.1:5514 --transport tcp \
//!     --framing octet --count 1000000 --size 200 --connections 4 --run-id demo
//! # the same over RELP (acknowledged: resent on reconnect)
//! cargo run --release --example loggen -- send --target 127.0.0.1:2514 --transport relp --count 100000 --run-id demo
//! # what arrived in a JSON-lines sink file
//! cargo run --release --example loggen -- check --file events.jsonl --count 1000000 --run-id demo
//! ```
//!
//! `check` prints `sent, received, lost, duplicated, unexpected` and exits non-zero on loss.

#![allow(clippy::print_stdout)] // the summary lines on stdout are loggen's output

use std::io::BufRead;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser as _;
use tokio::io::AsyncWriteExt;

/// Generate syslog load, or check a sink's output for loss.
#[derive(clap::Parser)]
#[command(version, about)]
enum Command {
    /// Send numbered messages.
    Send(SendArgs),
    /// Count what a JSON-lines sink file holds of a run.
    Check(CheckArgs),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Transport {
    Tcp,
    Relp,
    Udp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Framing {
    Lf,
    Octet,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    Rfc5424,
    Rfc3164,
}

#[derive(clap::Args, Clone)]
struct SendArgs {
    /// Where to send (host:port).
    #[arg(long)]
    target: SocketAddr,
    /// tcp, relp or udp.
    #[arg(long, value_enum, default_value = "tcp")]
    transport: Transport,
    /// TCP framing: lf or octet (RFC 6587 octet counting).
    #[arg(long, value_enum, default_value = "octet")]
    framing: Framing,
    /// How many messages in all.
    #[arg(long, default_value_t = 10_000)]
    count: u64,
    /// Messages per second in all (0: as fast as possible).
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Size of each message in bytes (the body is padded to reach it).
    #[arg(long, default_value_t = 200)]
    size: usize,
    /// Parallel connections; message numbers are spread across them.
    #[arg(long, default_value_t = 1)]
    connections: u64,
    /// rfc5424 or rfc3164.
    #[arg(long, value_enum, default_value = "rfc5424")]
    format: Format,
    /// The run id carried by every message (default: the current time).
    #[arg(long)]
    run_id: Option<String>,
    /// RELP: outstanding messages per connection.
    #[arg(long, default_value_t = 1024)]
    window: usize,
}

#[derive(clap::Args)]
struct CheckArgs {
    /// The file a sink wrote: loggr's JSON lines, or plain lines holding the message.
    #[arg(long)]
    file: PathBuf,
    /// How many messages were sent.
    #[arg(long)]
    count: u64,
    /// The run id to look for.
    #[arg(long)]
    run_id: String,
}

/// Builds message `seq` of a run, `size` bytes long.
fn message(format: Format, run_id: &str, seq: u64, size: usize, stamp: &str) -> Vec<u8> {
    let body = format!("loggen run={run_id} seq={seq} ");
    let mut out = match format {
        Format::Rfc5424 => format!("<134>1 {stamp} loggen-host loggen 4242 - - {body}"),
        Format::Rfc3164 => format!("<134>{stamp} loggen-host loggen[4242]: {body}"),
    }
    .into_bytes();
    out.resize(size.max(out.len()), b'x');
    out
}

/// The timestamp a connection puts in its messages: the current time, taken again every
/// [`Stamper::EVERY`] messages (formatting it for each one would cost more than sending it).
/// Counted per connection, so every connection's clock advances.
struct Stamper {
    format: Format,
    count: u64,
    current: String,
}

impl Stamper {
    const EVERY: u64 = 100;

    fn new(format: Format) -> Self {
        Stamper {
            format,
            count: 0,
            current: stamp(format),
        }
    }

    fn next(&mut self) -> &str {
        if self.count > 0 && self.count.is_multiple_of(Self::EVERY) {
            self.current = stamp(self.format);
        }
        self.count += 1;
        &self.current
    }
}

fn stamp(format: Format) -> String {
    let now = jiff::Zoned::now().with_time_zone(jiff::tz::TimeZone::UTC);
    match format {
        Format::Rfc5424 => now.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
        Format::Rfc3164 => now.strftime("%b %e %H:%M:%S").to_string(),
    }
}

/// Paces a sender to `rate` messages per second (0: unlimited).
struct Pacer {
    rate: f64,
    start: Instant,
    sent: u64,
}

impl Pacer {
    fn new(rate: f64) -> Self {
        Pacer {
            rate,
            start: Instant::now(),
            sent: 0,
        }
    }

    async fn tick(&mut self) {
        self.sent += 1;
        if self.rate <= 0.0 || !self.sent.is_multiple_of(64) {
            return;
        }
        let due = Duration::from_secs_f64(self.sent as f64 / self.rate);
        let elapsed = self.start.elapsed();
        if due > elapsed {
            tokio::time::sleep(due - elapsed).await;
        }
    }
}

async fn send_connection(args: SendArgs, run_id: String, connection: u64) -> anyhow::Result<u64> {
    let per_connection_rate = args.rate as f64 / args.connections as f64;
    let mut pacer = Pacer::new(per_connection_rate);
    let seqs = (connection..args.count).step_by(args.connections as usize);
    let mut sent = 0u64;
    let mut stamper = Stamper::new(args.format);
    match args.transport {
        Transport::Tcp => {
            let stream = tokio::net::TcpStream::connect(args.target)
                .await
                .with_context(|| format!("connecting to {}", args.target))?;
            stream.set_nodelay(true)?;
            let mut out = tokio::io::BufWriter::with_capacity(256 * 1024, stream);
            for seq in seqs {
                let body = message(args.format, &run_id, seq, args.size, stamper.next());
                match args.framing {
                    Framing::Octet => {
                        out.write_all(format!("{} ", body.len()).as_bytes()).await?;
                        out.write_all(&body).await?;
                    }
                    Framing::Lf => {
                        out.write_all(&body).await?;
                        out.write_all(b"\n").await?;
                    }
                }
                sent += 1;
                pacer.tick().await;
            }
            out.flush().await?;
            out.into_inner().shutdown().await?;
        }
        Transport::Udp => {
            let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
            socket.connect(args.target).await?;
            for seq in seqs {
                socket
                    .send(&message(
                        args.format,
                        &run_id,
                        seq,
                        args.size,
                        stamper.next(),
                    ))
                    .await?;
                sent += 1;
                pacer.tick().await;
            }
        }
        Transport::Relp => {
            let config = loggr::relp::ClientConfig {
                window: args.window,
                ..loggr::relp::ClientConfig::default()
            };
            let mut client = loggr::relp::Client::connect(&args.target.to_string(), config)
                .await
                .with_context(|| format!("opening a RELP session with {}", args.target))?;
            for seq in seqs {
                client
                    .send(message(args.format, &run_id, seq, args.size, stamper.next()).into())
                    .await?;
                sent += 1;
                pacer.tick().await;
            }
            let stats = client.close().await?;
            eprintln!(
                "connection {connection}: relp acked={} refused={} resent={} reconnects={}",
                stats.acked, stats.refused, stats.resent, stats.reconnects
            );
        }
    }
    Ok(sent)
}

async fn send(args: SendArgs) -> anyhow::Result<()> {
    if args.connections == 0 {
        bail!("--connections must be at least 1");
    }
    let run_id = args
        .run_id
        .clone()
        .unwrap_or_else(|| jiff::Timestamp::now().as_second().to_string());
    let started = Instant::now();
    let mut tasks = Vec::new();
    for connection in 0..args.connections {
        tasks.push(tokio::spawn(send_connection(
            args.clone(),
            run_id.clone(),
            connection,
        )));
    }
    let mut sent = 0;
    for task in tasks {
        sent += task.await??;
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "run={run_id} sent={sent} seconds={seconds:.3} rate={:.0} msgs/s",
        sent as f64 / seconds.max(1e-9)
    );
    Ok(())
}

/// The part of a stored event `check` reads.
#[derive(serde::Deserialize)]
struct Stored {
    message: Option<String>,
}

/// Counts of a check.
#[derive(Debug, Default, PartialEq, Eq)]
struct Tally {
    received: u64,
    lost: u64,
    duplicated: u64,
    unexpected: u64,
}

fn check(args: &CheckArgs) -> anyhow::Result<Tally> {
    let file = std::fs::File::open(&args.file)
        .with_context(|| format!("opening {}", args.file.display()))?;
    let marker = format!("loggen run={} seq=", args.run_id);
    let mut seen = vec![0u32; usize::try_from(args.count)?];
    let mut tally = Tally::default();
    for line in std::io::BufReader::with_capacity(1 << 20, file).lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        // loggr's JSON lines, or plain text lines (another receiver's file, for comparisons).
        let message = if line.starts_with('{') {
            let stored: Stored =
                serde_json::from_str(&line).with_context(|| format!("not an event: {line}"))?;
            stored.message
        } else {
            Some(line)
        };
        let seq = message
            .as_deref()
            .and_then(|m| m.find(&marker).map(|at| &m[at + marker.len()..]))
            .and_then(|rest| rest.split(' ').next())
            .and_then(|digits| digits.parse::<usize>().ok());
        match seq.and_then(|seq| seen.get_mut(seq)) {
            Some(count) => {
                *count += 1;
                tally.received += 1;
            }
            None => tally.unexpected += 1,
        }
    }
    for count in seen {
        match count {
            0 => tally.lost += 1,
            n => tally.duplicated += u64::from(n - 1),
        }
    }
    Ok(tally)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    loggr::daemon::init_logging();
    match Command::parse() {
        Command::Send(args) => send(args).await,
        Command::Check(args) => {
            let tally = check(&args)?;
            println!(
                "sent={} received={} lost={} duplicated={} unexpected={}",
                args.count, tally.received, tally.lost, tally.duplicated, tally.unexpected
            );
            if tally.lost > 0 {
                std::process::exit(1);
            }
            Ok(())
        }
    }
}
