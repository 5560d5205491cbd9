//! `loggen send` as a load: every connection's messages carry a clock that advances, as a real
//! sender's do. (Until this test, the second of two connections stamped all its messages with
//! the time it started, which made a store's time-ordered indexes look like random inserts.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::Command;

#[test]
fn every_connection_stamps_its_messages_with_an_advancing_clock() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let target = listener.local_addr().unwrap();
    let connections = 3u64;
    let count = 900u64;
    // Paced (about 300 ms per connection) so that each one's clock moves between its stamps.
    let sender = std::thread::spawn(move || {
        Command::new(support::example("loggen"))
            .args([
                "send",
                "--transport",
                "tcp",
                "--framing",
                "lf",
                "--run-id",
                "stamps",
            ])
            .args(["--target", &target.to_string()])
            .args(["--count", &count.to_string()])
            .args(["--connections", &connections.to_string()])
            .args(["--rate", "1000"])
            .output()
            .unwrap()
    });

    let mut readers = Vec::new();
    for _ in 0..connections {
        let (stream, _) = listener.accept().unwrap();
        readers.push(std::thread::spawn(move || {
            BufReader::new(stream)
                .lines()
                .map(Result::unwrap)
                .collect::<Vec<String>>()
        }));
    }
    let output = sender.join().unwrap();
    assert!(
        output.status.success(),
        "loggen failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );

    // seq → stamp, from lines like `<134>1 STAMP loggen-host loggen 4242 - - loggen run=stamps seq=N …`.
    let mut stamps = BTreeMap::new();
    for reader in readers {
        for line in reader.join().unwrap() {
            let stamp = line.split(' ').nth(1).unwrap().to_owned();
            let seq: u64 = line
                .split("seq=")
                .nth(1)
                .and_then(|rest| rest.split(' ').next())
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("no seq in {line:?}"));
            assert!(stamps.insert(seq, stamp).is_none(), "seq {seq} twice");
        }
    }
    assert_eq!(stamps.len() as u64, count, "every message arrived once");

    // Connection c sends seq c, c + connections, …; each must show several stamps, in order.
    for connection in 0..connections {
        let own: Vec<&String> = stamps
            .iter()
            .filter(|(seq, _)| *seq % connections == connection)
            .map(|(_, stamp)| stamp)
            .collect();
        let distinct: BTreeSet<&String> = own.iter().copied().collect();
        assert!(
            distinct.len() >= 2,
            "connection {connection} stamped its {} messages with {} time(s): {distinct:?}",
            own.len(),
            distinct.len()
        );
        assert!(
            own.windows(2).all(|pair| pair[0] <= pair[1]),
            "connection {connection}'s stamps go back in time"
        );
    }
}
