//! Real files from loghub (`shared/corpus/loghub/*.log`): every line parses as RFC 3164 with
//! the year given (`year = 2005`, as `--year`), and for Linux and OpenSSH the hostname, app and
//! pid agree with loghub's own structured CSVs (whose `Content` has trailing spaces trimmed).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use bytes::Bytes;
use loggr_core::syslog::{Rfc3164Parser, SyslogOptions};
use loggr_core::{Event, ParseContext, Parser};

fn loghub() -> PathBuf {
    let shared = match std::env::var_os("LOGGR_SHARED_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"),
    };
    let dir = shared.join("corpus/loghub");
    assert!(
        dir.join("Linux_2k.log").is_file(),
        "the loghub corpus is missing: expected {} (set LOGGR_SHARED_DIR to the directory \
         holding `corpus/`)",
        dir.display()
    );
    dir
}

/// The lines of a loghub file (CRLF, no LF after the last line).
fn lines(name: &str) -> Vec<String> {
    let text = std::fs::read_to_string(loghub().join(name)).unwrap();
    let lines: Vec<String> = text
        .split('\n')
        .map(|line| line.trim_end_matches('\r').to_owned())
        .filter(|line| !line.is_empty())
        .collect();
    assert_eq!(lines.len(), 2000, "{name}");
    lines
}

/// RFC 4180 records (quoted fields with commas and doubled quotes).
fn csv(name: &str) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(loghub().join(name)).unwrap();
    let mut records = Vec::new();
    for line in text.lines().skip(1).filter(|l| !l.is_empty()) {
        let mut fields = Vec::new();
        let mut field = String::new();
        let mut quoted = false;
        let mut chars = line.chars().peekable();
        while let Some(ch) = chars.next() {
            match (ch, quoted) {
                ('"', true) if chars.peek() == Some(&'"') => {
                    field.push('"');
                    chars.next();
                }
                ('"', _) => quoted = !quoted,
                (',', false) => fields.push(std::mem::take(&mut field)),
                _ => field.push(ch),
            }
        }
        fields.push(field);
        records.push(fields);
    }
    records
}

fn parse_all(name: &str, strip_prefix_words: usize) -> Vec<(String, Event)> {
    let parser = Rfc3164Parser::new(&SyslogOptions {
        year: Some(2005),
        timezone: Some("UTC".into()),
        ..SyslogOptions::default()
    })
    .unwrap();
    let cx = ParseContext::now();
    lines(name)
        .into_iter()
        .enumerate()
        .map(|(index, line)| {
            let body = line
                .splitn(strip_prefix_words + 1, ' ')
                .last()
                .unwrap()
                .to_owned();
            let event = parser
                .parse(Bytes::from(body), &cx)
                .unwrap_or_else(|error| panic!("{name} line {}: {error}: {line}", index + 1));
            let stamp = event
                .timestamp
                .unwrap_or_else(|| panic!("{name} line {}: no timestamp: {line}", index + 1));
            assert_eq!(
                stamp.to_zoned(jiff::tz::TimeZone::UTC).year(),
                2005,
                "{name} line {}",
                index + 1
            );
            assert!(
                event.hostname.is_some(),
                "{name} line {}: no hostname: {line}",
                index + 1
            );
            (line, event)
        })
        .collect()
}

fn opt(field: &str) -> Option<&str> {
    (!field.is_empty()).then_some(field)
}

#[test]
fn linux_messages_match_loghub_structured_csv() {
    let events = parse_all("Linux_2k.log", 0);
    let records = csv("Linux_2k.log_structured.csv");
    assert_eq!(events.len(), records.len());
    // LineId,Month,Date,Time,Level(=hostname),Component,PID,Content,EventId,EventTemplate
    for ((line, event), record) in events.iter().zip(&records) {
        let context = format!("line {}: {line}", record[0]);
        assert_eq!(
            event.hostname.as_deref(),
            Some(record[4].as_str()),
            "{context}"
        );
        assert_eq!(event.app_name.as_deref(), opt(&record[5]), "{context}");
        assert_eq!(event.procid.as_deref(), opt(&record[6]), "{context}");
        assert_eq!(event.message_str().trim_end(), record[7], "{context}");
        let local = event.timestamp.unwrap().to_zoned(jiff::tz::TimeZone::UTC);
        assert_eq!(local.day().to_string(), record[2], "{context}");
        assert_eq!(
            local.strftime("%H:%M:%S").to_string(),
            record[3],
            "{context}"
        );
    }
}

#[test]
fn openssh_messages_match_loghub_structured_csv() {
    let events = parse_all("OpenSSH_2k.log", 0);
    let records = csv("OpenSSH_2k.log_structured.csv");
    assert_eq!(events.len(), records.len());
    // LineId,Date(=month),Day,Time,Component(=hostname),Pid,Content,EventId,EventTemplate
    for ((line, event), record) in events.iter().zip(&records) {
        let context = format!("line {}: {line}", record[0]);
        assert_eq!(
            event.hostname.as_deref(),
            Some(record[4].as_str()),
            "{context}"
        );
        assert_eq!(event.app_name.as_deref(), Some("sshd"), "{context}");
        assert_eq!(event.procid.as_deref(), opt(&record[5]), "{context}");
        assert_eq!(event.message_str().trim_end(), record[6], "{context}");
    }
}

#[test]
fn mac_system_log_lines_all_have_host_and_program() {
    for (line, event) in parse_all("Mac_2k.log", 0) {
        let words: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(event.hostname.as_deref(), Some(words[3]), "{line}");
        let app = event
            .app_name
            .as_deref()
            .unwrap_or_else(|| panic!("no app: {line}"));
        let after_host = line.split_once(words[3]).unwrap().1.trim_start();
        assert!(after_host.starts_with(app), "{line}");
    }
}

#[test]
fn thunderbird_lines_parse_after_their_loghub_prefix() {
    // `- 1131566461 2005.11.09 dn228 Nov 9 12:01:01 dn228/dn228 crond[2916]: ...`
    for (line, event) in parse_all("Thunderbird_2k.log", 4) {
        let words: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(event.hostname.as_deref(), Some(words[7]), "{line}");
        let date = event.timestamp.unwrap().strftime("%Y.%m.%d").to_string();
        assert_eq!(date, words[2], "{line}");
    }
}
