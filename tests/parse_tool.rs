//! The `parse` tool's contract (`examples/parse.rs` calls `loggr::core::syslog::tool::render`):
//! exactly the documented keys, errors as `{"error", "raw"}`, the flags' effects.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use loggr::core::syslog::tool::{render, Framing, Json as Value, ToolOptions};
use loggr::core::syslog::{Format, SyslogOptions};

fn json(text: &str) -> Value {
    text.parse().unwrap()
}

fn run(input: &[u8], format: Format, year: Option<i16>, tz: &str, framing: Framing) -> Vec<Value> {
    let options = ToolOptions {
        format,
        syslog: SyslogOptions {
            year,
            timezone: Some(tz.to_owned()),
            ..SyslogOptions::default()
        },
        framing,
        received_at: Some("2024-06-15T12:00:00Z".parse().unwrap()),
    };
    let mut out = Vec::new();
    render(input, &options, &mut out).unwrap();
    String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|line| line.parse().unwrap())
        .collect()
}

const KEYS: [&str; 9] = [
    "facility",
    "severity",
    "timestamp",
    "hostname",
    "app_name",
    "procid",
    "msgid",
    "structured_data",
    "message",
];

#[test]
fn auto_format_prints_exactly_the_documented_keys() {
    let input = b"<165>1 2003-10-11T22:14:15.003+02:00 mymachine.example.com evntslog - ID47 \
[exampleSDID@32473 iut=\"3\" eventSource=\"Application\"][x@1 ip=\"a\" ip=\"b\"] An entry\n\
<34>Oct 11 22:14:15 mymachine su[7]: 'su root' failed\n\
{\"facility\":\"auth\",\"severity\":\"warning\",\"message\":\"json\"}\n\
2024-01-02T03:04:05.5Z web1 sshd: file line\n";
    let out = run(input, Format::Auto, Some(2021), "Europe/Paris", Framing::Lf);
    assert_eq!(out.len(), 4);
    for object in &out {
        let keys: Vec<&str> = object
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut expected = KEYS.to_vec();
        expected.sort_unstable();
        assert_eq!(keys, expected, "{object}");
    }
    assert_eq!(
        out[0],
        json(
            r#"{"facility": 20, "severity": 5, "timestamp": "2003-10-11T20:14:15.003Z",
                "hostname": "mymachine.example.com", "app_name": "evntslog", "procid": null,
                "msgid": "ID47",
                "structured_data": {"exampleSDID@32473": {"iut": "3", "eventSource": "Application"},
                                    "x@1": {"ip": ["a", "b"]}},
                "message": "An entry"}"#
        )
    );
    // --year and --tz: Oct 11 22:14:15 in Paris (CEST) in 2021.
    assert_eq!(out[1]["timestamp"], "2021-10-11T20:14:15Z");
    assert_eq!(out[1]["procid"], "7");
    assert_eq!(
        (&out[2]["facility"], &out[2]["severity"]),
        (&json("4"), &json("4"))
    );
    assert_eq!(out[3]["timestamp"], "2024-01-02T03:04:05.5Z");
    assert_eq!(out[3]["app_name"], "sshd");
}

#[test]
fn failures_print_error_and_raw_and_the_tool_goes_on() {
    let out = run(
        b"<13>1 not a timestamp - - - -\n<13>1 - - - - - - fine\n",
        Format::Rfc5424,
        None,
        "UTC",
        Framing::Lf,
    );
    assert_eq!(out.len(), 2);
    let error = out[0].as_object().unwrap();
    assert_eq!(error.len(), 2);
    assert!(error["error"].as_str().unwrap().contains("TIMESTAMP"));
    assert_eq!(error["raw"], "<13>1 not a timestamp - - - -");
    assert_eq!(out[1]["message"], "fine");
}

#[test]
fn octet_framing_reads_counted_frames_with_newlines_inside() {
    let out = run(
        b"23 <13>1 - - - - - - a\nb c17 <13>1 - - - - - -",
        Format::Rfc5424,
        None,
        "UTC",
        Framing::Octet,
    );
    assert_eq!(out.len(), 2);
    assert_eq!(out[0]["message"], "a\nb c");
    assert_eq!(out[1]["message"], Value::Null);
}

#[test]
fn flags_select_strict_formats() {
    let line = b"<34>Oct 11 22:14:15 mymachine su: x\n";
    let out = run(line, Format::Rfc5424, None, "UTC", Framing::Lf);
    assert!(out[0].get("error").is_some());
    let out = run(line, Format::Rfc3164, Some(1999), "UTC", Framing::Lf);
    assert_eq!(out[0]["timestamp"], "1999-10-11T22:14:15Z");
    let out = run(line, Format::Json, None, "UTC", Framing::Lf);
    assert!(out[0]["error"]
        .as_str()
        .unwrap()
        .starts_with("invalid JSON event"));
}
