//! The syslog parsers and framing decoders against the shared third-party corpus
//! (`shared/corpus/syslog-cases.jsonl`, `framing-cases.jsonl`).
//!
//! Every case runs. Expectations are those of the case's source; where loggr's policy differs
//! the case id is listed in `testdata/syslog-policy.jsonl` with the reason and OUR expected
//! behaviour, which is then asserted instead. The run fails if an unlisted case disagrees with
//! its source, if a listed case no longer exists, or if a listed case actually agrees with its
//! source (the entry is stale).
//!
//! Representation conventions of the sources (not policy differences) are translated here:
//! - year-less RFC 3164 stamps are written `0000-MM-DDThh:mm:ss` (compared without year, in
//!   the case's zone), stamps without offset are compared as wall-clock time in that zone;
//! - rsyslog cases give `%msg%`, which keeps the space after the TAG and cannot show "no
//!   message" (an empty `%msg%` is our `None`); `timestamp_text` is rsyslog's `Mmm dd
//!   hh:mm:ss`; `tag` is `%syslogtag%`, checked against our app_name and procid;
//! - `message_base64` (bytes that are not UTF-8): our message is text, so it must be the lossy
//!   decoding of those bytes, with the `_invalid_utf8` tag and the frame kept in `raw`;
//! - case options `year`, `year_from_callback` and `timezone` configure our parser (default:
//!   zone UTC, year from the reception time 2024-06-15T12:00:00Z); others are the source's
//!   switches and do not apply.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use bytes::{Bytes, BytesMut};
use jiff::tz::TimeZone;
use jiff::Timestamp;
use loggr_core::codec::{FramingError, LineDecoder, OctetCountingDecoder};
use loggr_core::parser::INVALID_UTF8_TAG;
use loggr_core::syslog::time::time_zone;
use loggr_core::syslog::{Rfc3164Parser, Rfc5424Parser, SyslogOptions};
use loggr_core::{Event, ParseContext, Parser};
use serde_json::{Map, Value as Json};
use tokio_util::codec::Decoder;

fn shared_dir() -> PathBuf {
    let dir = match std::env::var_os("LOGGR_SHARED_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"),
    };
    let corpus = dir.join("corpus");
    assert!(
        corpus.join("syslog-cases.jsonl").is_file(),
        "the shared test corpus is missing: expected {} (set LOGGR_SHARED_DIR to the directory \
         holding `corpus/`)",
        corpus.display()
    );
    dir
}

fn read_jsonl(path: &PathBuf) -> Vec<Map<String, Json>> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()));
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .enumerate()
        .map(|(index, line)| match serde_json::from_str(line) {
            Ok(Json::Object(object)) => object,
            _ => panic!("{} line {}: not a JSON object", path.display(), index + 1),
        })
        .collect()
}

/// One policy entry: cases where loggr deliberately differs from the source.
struct Policy {
    reason: String,
    valid: Option<bool>,
    expect: Map<String, Json>,
    options: Map<String, Json>,
    tags: Vec<String>,
    strip_bom: bool,
    results: Option<Vec<Json>>,
}

fn policies() -> BTreeMap<String, Policy> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/syslog-policy.jsonl");
    let mut out = BTreeMap::new();
    for entry in read_jsonl(&path) {
        let get_map = |key: &str| match entry.get(key) {
            Some(Json::Object(map)) => map.clone(),
            _ => Map::new(),
        };
        let reason = entry["reason"]
            .as_str()
            .expect("policy entry without reason");
        assert!(!reason.is_empty());
        for id in entry["ids"].as_array().expect("policy entry without ids") {
            let id = id.as_str().unwrap().to_owned();
            let policy = Policy {
                reason: reason.to_owned(),
                valid: entry.get("valid").and_then(Json::as_bool),
                expect: get_map("expect"),
                options: get_map("options"),
                tags: entry
                    .get("tags")
                    .and_then(Json::as_array)
                    .map(|tags| {
                        tags.iter()
                            .map(|t| t.as_str().unwrap().to_owned())
                            .collect()
                    })
                    .unwrap_or_default(),
                strip_bom: entry.get("strip_bom").and_then(Json::as_bool) == Some(true),
                results: entry.get("results").and_then(Json::as_array).cloned(),
            };
            assert!(
                out.insert(id.clone(), policy).is_none(),
                "{id} listed twice"
            );
        }
    }
    out
}

fn base64(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for byte in text.trim_end_matches('=').bytes() {
        let value = ALPHABET.iter().position(|&c| c == byte).unwrap() as u32;
        acc = (acc << 6) | value;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

const RECEIVED: &str = "2024-06-15T12:00:00Z";

struct Run {
    tz: TimeZone,
    result: Result<Event, String>,
}

fn run_case(case: &Map<String, Json>, options: &Map<String, Json>) -> Run {
    let input = match (case.get("input"), case.get("input_base64")) {
        (Some(Json::String(text)), _) => Bytes::from(text.clone()),
        (_, Some(Json::String(encoded))) => Bytes::from(base64(encoded)),
        _ => panic!("{}: no input", case["id"]),
    };
    let tz_name = options
        .get("timezone")
        .and_then(Json::as_str)
        .unwrap_or("UTC");
    let tz = time_zone(tz_name).unwrap_or_else(|e| panic!("{}: {e}", case["id"]));
    let year = options
        .get("year")
        .or_else(|| options.get("year_from_callback"))
        .and_then(Json::as_i64)
        .map(|year| year as i16);
    let syslog = SyslogOptions {
        year,
        timezone: Some(tz_name.to_owned()),
        ..SyslogOptions::default()
    };
    let cx = ParseContext {
        received_at: RECEIVED.parse().unwrap(),
        peer: None,
    };
    let result = match case["format"].as_str() {
        Some("rfc5424") => Rfc5424Parser::new(&syslog).parse(input, &cx),
        Some("rfc3164") => Rfc3164Parser::new(&syslog).unwrap().parse(input, &cx),
        other => panic!("{}: unknown format {other:?}", case["id"]),
    };
    Run {
        tz,
        result: result.map_err(|error| error.to_string()),
    }
}

fn text(value: &Option<loggr_core::Text>) -> Json {
    value
        .as_deref()
        .map_or(Json::Null, |v| Json::String(v.to_owned()))
}

/// `Mmm dd hh:mm:ss` or `MM-DDThh:mm:ss` of an instant in a zone.
fn month_day_time(at: Timestamp, tz: &TimeZone) -> (i8, i8, i8, i8, i8) {
    let local = at.to_zoned(tz.clone());
    (
        local.month(),
        local.day(),
        local.hour(),
        local.minute(),
        local.second(),
    )
}

fn check_timestamp(expected: &str, ours: Option<Timestamp>, tz: &TimeZone) -> Result<(), String> {
    let ours = ours.ok_or("no timestamp")?;
    let mismatch = || format!("timestamp {ours} (in {tz:?}) is not {expected}");
    let civil_len = expected.get(19..).map_or(19, |rest| {
        19 + rest.find(['Z', '+', '-']).unwrap_or(rest.len())
    });
    let (civil, offset) = expected.split_at(civil_len.min(expected.len()));
    let zone = if offset.is_empty() {
        tz.clone()
    } else {
        time_zone(if offset == "Z" { "UTC" } else { offset }).map_err(|e| e.to_string())?
    };
    if let Some(rest) = civil.strip_prefix("0000-") {
        // Year-less: month, day and time in the zone.
        let parsed: jiff::civil::DateTime =
            format!("2000-{rest}").parse().map_err(|_| mismatch())?;
        let want = (
            parsed.month(),
            parsed.day(),
            parsed.hour(),
            parsed.minute(),
            parsed.second(),
        );
        return (month_day_time(ours, &zone) == want)
            .then_some(())
            .ok_or_else(mismatch);
    }
    let parsed: jiff::civil::DateTime = civil.parse().map_err(|_| mismatch())?;
    (ours.to_zoned(zone).datetime() == parsed)
        .then_some(())
        .ok_or_else(mismatch)
}

fn check_timestamp_text(
    expected: &str,
    ours: Option<Timestamp>,
    tz: &TimeZone,
) -> Result<(), String> {
    let ours = ours.ok_or("no timestamp")?;
    let month = loggr_core::syslog::time::month_from_abbrev(expected.as_bytes()).unwrap() as i8;
    let mut words = expected.get(3..).unwrap().split_whitespace();
    let day: i8 = words.next().unwrap().parse().unwrap();
    let time: Vec<i8> = words
        .next()
        .unwrap()
        .split(':')
        .map(|p| p.parse().unwrap())
        .collect();
    let want = (month, day, time[0], time[1], time[2]);
    (month_day_time(ours, tz) == want)
        .then_some(())
        .ok_or_else(|| format!("timestamp {ours} (in {tz:?}) is not `{expected}`"))
}

/// Checks one expected key against our event.
fn check_key(key: &str, want: &Json, event: &Event, tz: &TimeZone) -> Result<(), String> {
    let same = |ours: Json| {
        (ours == *want)
            .then_some(())
            .ok_or_else(|| format!("{key}: ours {ours}, expected {want}"))
    };
    match key {
        "facility" => same(Json::from(event.facility.code())),
        "severity" => same(Json::from(event.severity.code())),
        "priority" => same(Json::from(
            event.facility.code() * 8 + event.severity.code(),
        )),
        "version" => same(Json::from(1)),
        "hostname" => same(text(&event.hostname)),
        "app_name" => same(text(&event.app_name)),
        "procid" => same(text(&event.procid)),
        "msgid" => same(text(&event.msgid)),
        "message" => same(text(&event.message)),
        "structured_data" => {
            let ours = serde_json::to_value(&event.structured_data).unwrap();
            match want {
                Json::Null if event.structured_data.is_empty() => Ok(()),
                _ => same(ours),
            }
        }
        "timestamp" => match want {
            Json::Null => same(Json::Null).or_else(|_| {
                event.timestamp.map_or(Ok(()), |t| {
                    Err(format!("timestamp: ours {t}, expected null"))
                })
            }),
            Json::String(expected) => check_timestamp(expected, event.timestamp, tz),
            _ => Err(format!("bad expectation {want}")),
        },
        "timestamp_text" => check_timestamp_text(want.as_str().unwrap(), event.timestamp, tz),
        "message_base64" => {
            let bytes = base64(want.as_str().unwrap());
            let lossy = String::from_utf8_lossy(&bytes);
            if event.message.as_deref() != Some(&*lossy) {
                return Err(format!(
                    "message: ours {:?}, expected {lossy:?}",
                    event.message
                ));
            }
            let raw_has_bytes = event
                .raw
                .as_ref()
                .is_some_and(|raw| raw.windows(bytes.len()).any(|w| w == bytes));
            if std::str::from_utf8(&bytes).is_err()
                && !(event.has_tag(INVALID_UTF8_TAG) && raw_has_bytes)
            {
                return Err("invalid UTF-8 message not flagged or raw not kept".into());
            }
            Ok(())
        }
        "tag" => {
            let tag = want.as_str().unwrap();
            let app = event.app_name.as_deref();
            let forms: Vec<String> = match (app, event.procid.as_deref()) {
                (None, None) => vec![String::new()],
                (None, Some(_)) => vec![],
                (Some(app), None) => vec![app.to_owned(), format!("{app}:")],
                (Some(app), Some(pid)) => vec![format!("{app}[{pid}]"), format!("{app}[{pid}]:")],
            };
            forms
                .iter()
                .any(|form| form == tag)
                .then_some(())
                .ok_or_else(|| {
                    format!(
                        "tag {tag:?} does not match app {app:?} / procid {:?}",
                        event.procid
                    )
                })
        }
        other => Err(format!("unknown expectation key {other}")),
    }
}

/// The source's expectation in our representation.
fn normalized_expect(case: &Map<String, Json>) -> Map<String, Json> {
    let mut expect = match case.get("expect") {
        Some(Json::Object(map)) => map.clone(),
        _ => Map::new(),
    };
    let rsyslog = case["source"].as_str().unwrap().starts_with("rsyslog/");
    if rsyslog {
        if let Some(Json::String(message)) = expect.get("message") {
            let message = if case["format"] == "rfc3164" {
                message.trim_start_matches(' ')
            } else {
                message
            };
            let value = if message.is_empty() {
                Json::Null
            } else {
                Json::String(message.to_owned())
            };
            expect.insert("message".into(), value);
        }
    }
    expect
}

fn evaluate(
    case: &Map<String, Json>,
    valid: bool,
    expect: &Map<String, Json>,
    options: &Map<String, Json>,
    tags: &[String],
) -> Result<(), Vec<String>> {
    let run = run_case(case, options);
    match (&run.result, valid) {
        (Err(error), true) => Err(vec![format!("rejected: {error}")]),
        (Ok(event), false) => Err(vec![format!(
            "accepted what should be rejected: {}",
            loggr_core::syslog::tool::event_json(event)
        )]),
        (Err(_), false) => Ok(()),
        (Ok(event), true) => {
            let mut problems: Vec<String> = expect
                .iter()
                .filter_map(|(key, want)| check_key(key, want, event, &run.tz).err())
                .collect();
            for tag in tags {
                if !event.has_tag(tag) {
                    problems.push(format!("tag {tag} missing (tags: {:?})", event.tags));
                }
            }
            if problems.is_empty() {
                Ok(())
            } else {
                Err(problems)
            }
        }
    }
}

#[test]
fn syslog_cases_agree_with_their_sources_or_with_our_recorded_policy() {
    let shared = shared_dir();
    let cases = read_jsonl(&shared.join("corpus/syslog-cases.jsonl"));
    let policies = policies();
    let ids: BTreeSet<String> = cases
        .iter()
        .map(|case| case["id"].as_str().unwrap().to_owned())
        .collect();
    let mut failures = Vec::new();
    for id in policies.keys() {
        if id.starts_with("syslog-") && !ids.contains(id) {
            failures.push(format!(
                "{id}: listed in the policy file but not in the corpus"
            ));
        }
    }
    let (mut agreed, mut differ) = (0, 0);
    for case in &cases {
        let id = case["id"].as_str().unwrap();
        let source_valid = case["valid"].as_bool().unwrap();
        let source_expect = normalized_expect(case);
        let source_options = match case.get("options") {
            Some(Json::Object(map)) => map.clone(),
            _ => Map::new(),
        };
        let source_verdict = evaluate(case, source_valid, &source_expect, &source_options, &[]);
        match policies.get(id) {
            None => match source_verdict {
                Ok(()) => agreed += 1,
                Err(problems) => failures.push(format!(
                    "{id} ({}): {}\n    input: {:?}",
                    case["source"].as_str().unwrap(),
                    problems.join("; "),
                    case.get("input").or(case.get("input_base64"))
                )),
            },
            Some(policy) => {
                differ += 1;
                if source_verdict.is_ok() && policy.tags.is_empty() {
                    failures.push(format!(
                        "{id}: listed in the policy ({}) but agrees with its source; remove the entry",
                        policy.reason
                    ));
                    continue;
                }
                let mut expect = source_expect.clone();
                if policy.strip_bom {
                    if let Some(Json::String(message)) = expect.get("message") {
                        let stripped = message.trim_start_matches('\u{feff}');
                        let value = if stripped.is_empty() {
                            Json::Null
                        } else {
                            Json::String(stripped.to_owned())
                        };
                        expect.insert("message".into(), value);
                    }
                }
                expect.extend(policy.expect.clone());
                let mut options = source_options.clone();
                options.extend(policy.options.clone());
                let valid = policy.valid.unwrap_or(source_valid);
                if let Err(problems) = evaluate(case, valid, &expect, &options, &policy.tags) {
                    failures.push(format!(
                        "{id} (policy: {}): {}\n    input: {:?}",
                        policy.reason,
                        problems.join("; "),
                        case.get("input").or(case.get("input_base64"))
                    ));
                }
            }
        }
    }
    eprintln!(
        "syslog corpus: {} cases, {agreed} agree with their source, {differ} follow loggr's recorded policy",
        cases.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {} syslog cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    assert!(
        cases.len() >= 345,
        "the corpus shrank: {} cases",
        cases.len()
    );
}

/// Decodes a whole stream with `decoder`, fed `chunk` bytes at a time.
fn decode_stream<D>(mut decoder: D, input: &[u8], chunk: usize) -> Vec<Result<Bytes, FramingError>>
where
    D: Decoder<Item = Bytes, Error = FramingError>,
{
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for piece in input.chunks(chunk.max(1)) {
        buf.extend_from_slice(piece);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(frame)) => out.push(Ok(frame)),
                Ok(None) => break,
                Err(error) => {
                    let fatal = !error.can_continue();
                    out.push(Err(error));
                    if fatal {
                        return out;
                    }
                }
            }
        }
    }
    loop {
        match decoder.decode_eof(&mut buf) {
            Ok(Some(frame)) => out.push(Ok(frame)),
            Ok(None) => break,
            Err(error) => {
                out.push(Err(error));
                break;
            }
        }
    }
    out
}

#[test]
fn framing_cases_agree_with_their_sources_or_with_our_recorded_policy() {
    let shared = shared_dir();
    let cases = read_jsonl(&shared.join("corpus/framing-cases.jsonl"));
    let policies = policies();
    let ids: BTreeSet<&str> = cases
        .iter()
        .map(|case| case["id"].as_str().unwrap())
        .collect();
    let mut failures = Vec::new();
    for id in policies.keys() {
        if id.starts_with("framing-") && !ids.contains(id.as_str()) {
            failures.push(format!(
                "{id}: listed in the policy file but not in the corpus"
            ));
        }
    }
    let parser = Rfc5424Parser::default();
    let cx = ParseContext {
        received_at: RECEIVED.parse().unwrap(),
        peer: None,
    };
    for case in &cases {
        let id = case["id"].as_str().unwrap();
        let input = case["input"].as_str().unwrap().as_bytes();
        let max = case
            .get("max_message_length")
            .and_then(Json::as_u64)
            .unwrap_or(8192) as usize;
        let octet = case["framing"] == "octet-counting";
        let policy = policies.get(id);
        let expected = policy
            .and_then(|p| p.results.clone())
            .unwrap_or_else(|| case["best_effort_results"].as_array().unwrap().clone());
        let mut runs = Vec::new();
        for chunk in [input.len(), 1, 7] {
            let frames = if octet {
                decode_stream(OctetCountingDecoder::new(max), input, chunk)
            } else {
                decode_stream(LineDecoder::new(max), input, chunk)
            };
            let rendered: Vec<Result<Event, String>> = frames
                .into_iter()
                .map(|frame| match frame {
                    Ok(frame) => parser.parse(frame, &cx).map_err(|e| e.to_string()),
                    Err(error) => Err(error.to_string()),
                })
                .collect();
            runs.push(rendered);
        }
        let first = &runs[0];
        for other in &runs[1..] {
            let same = first.len() == other.len()
                && first.iter().zip(other).all(|(a, b)| match (a, b) {
                    (Ok(a), Ok(b)) => a.message == b.message && a.hostname == b.hostname,
                    (Err(_), Err(_)) => true,
                    _ => false,
                });
            if !same {
                failures.push(format!("{id}: results depend on how the input is chunked"));
            }
        }
        let mut problems = Vec::new();
        if first.len() != expected.len() {
            problems.push(format!(
                "{} results, expected {}: {:?}",
                first.len(),
                expected.len(),
                first
                    .iter()
                    .map(|r| r.as_ref().map(|_| "ok"))
                    .collect::<Vec<_>>()
            ));
        }
        for (index, (ours, want)) in first.iter().zip(&expected).enumerate() {
            match (ours, want.get("error")) {
                (Err(_), Some(_)) => {}
                (Err(error), None) => problems.push(format!("#{index}: error {error}")),
                (Ok(_), Some(error)) => {
                    problems.push(format!("#{index}: accepted, expected error {error}"))
                }
                (Ok(event), None) => {
                    let tz = TimeZone::UTC;
                    for (key, value) in want["message"].as_object().unwrap() {
                        if let Err(problem) = check_key(key, value, event, &tz) {
                            problems.push(format!("#{index}: {problem}"));
                        }
                    }
                }
            }
        }
        match (policy, problems.is_empty()) {
            (None, false) => failures.push(format!("{id}: {}", problems.join("; "))),
            (Some(policy), false) => failures.push(format!(
                "{id} (policy: {}): {}",
                policy.reason,
                problems.join("; ")
            )),
            (Some(policy), true) if policy.results.is_none() => failures.push(format!(
                "{id}: policy entry without `results` ({})",
                policy.reason
            )),
            _ => {}
        }
    }
    assert!(
        failures.is_empty(),
        "{} framing cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
