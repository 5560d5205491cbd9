//! `harvest`: turns files uploaded into spool directories into events (pyloggr's harvest), here
//! written as JSON lines to a file.
//!
//! A file is read once its uploader closed it or its size held still for `stable_after`, every
//! line becomes an event labelled with the directory's app name, host, facility and severity,
//! and the file is deleted only after every line was written to the output and fsynced; a
//! failed delivery keeps the file and reads it again later.
//!
//! ```text
//! cargo run --release --features harvest --example harvest                 # bundled config
//! cargo run --release --features harvest --example harvest -- --config FILE.toml
//! cargo run --release --features harvest --example harvest -- --print-config # start from this
//! ```
//!
//! The bundled configuration is `examples/config/harvest.toml`: it harvests
//! `${LOGGR_HARVEST_DIR:-/var/spool/loggr/harvest}` into
//! `${LOGGR_HARVEST_OUT:-/var/lib/loggr/harvested.jsonl}`. Try it:
//!
//! ```text
//! export LOGGR_HARVEST_DIR=/tmp/harvest LOGGR_HARVEST_OUT=/tmp/harvested.jsonl
//! cargo run --release --features harvest --example harvest &
//! printf 'first line\nsecond line\n' > /tmp/harvest/up.log   # closed when written: read at once
//! tail -f /tmp/harvested.jsonl
//! ```
//!
//! SIGINT or SIGTERM stops taking new files and waits, within the grace period, for the
//! outcome of the files already read.

#[path = "common/bundled_daemon.rs"]
mod bundled_daemon;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    bundled_daemon::run(
        "turns files uploaded into spool directories into events (pyloggr's harvest).",
        include_str!("config/harvest.toml"),
    )
    .await
}
