//! The `parse` tool's contract (`examples/parse.rs` calls `loggr::core::syslog::tool::render`):
//! exactly the documented keys, errors as `{"error", "raw"}`, the flags' effects, and with a
//! filter stack (`--buzzsaw`, `--filters FILE`) `tags`, `fields` and `dropped`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use loggr::core::config::ComponentConfig;
use loggr::core::syslog::tool::{
    build_filters, filters_from_toml, render, render_with_filters, Framing, Json as Value,
    ToolOptions,
};
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

fn run_filtered(input: &[u8], filters: &[Box<dyn loggr::Filter>]) -> Vec<Value> {
    let options = ToolOptions {
        format: Format::Rfc3164,
        syslog: SyslogOptions {
            year: Some(2005),
            timezone: Some("UTC".to_owned()),
            ..SyslogOptions::default()
        },
        framing: Framing::Lf,
        received_at: Some("2024-06-15T12:00:00Z".parse().unwrap()),
    };
    let mut out = Vec::new();
    render_with_filters(input, &options, filters, &mut out).unwrap();
    String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|line| line.parse().unwrap())
        .collect()
}

const BUZZSAW_INPUT: &[u8] = b"Dec 10 09:32:20 LabSZ sshd[24680]: Accepted password for fztu from 119.137.62.142 port 49116 ssh2\n\
Dec 10 06:55:46 LabSZ sshd[24200]: Invalid user webmaster from 173.234.31.186\n\
Dec 10 06:55:48 LabSZ cron[1]: (root) CMD (true)\n";

#[test]
fn buzzsaw_flag_adds_tags_fields_and_dropped() {
    let registry = loggr::registry().unwrap();
    let buzzsaw = ComponentConfig {
        type_name: "buzzsaw".into(),
        name: None,
        table: Default::default(),
    };
    let filters = build_filters(vec![buzzsaw], &registry).unwrap();
    let out = run_filtered(BUZZSAW_INPUT, &filters);
    assert_eq!(out.len(), 3);
    let kept = &out[0];
    assert_eq!(kept.get("dropped"), None);
    let tags: Vec<&str> = kept["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert_eq!(tags.len(), 4, "{tags:?}");
    assert_eq!(&tags[..3], ["auth", "auth_success", "ssh"]);
    assert!(tags[3].starts_with("user_is_"), "{tags:?}");
    assert_eq!(
        kept["fields"],
        json(
            r#"{"auth_method": "password", "source_address": "119.137.62.142", "userid": "fztu"}"#
        )
    );
    // A non-matching sshd line and another program's line: dropped, no tags, no fields.
    for dropped in &out[1..3] {
        assert_eq!(dropped["dropped"], true, "{dropped}");
        assert_eq!(dropped["tags"], json("[]"));
        assert_eq!(dropped["fields"], json("{}"));
        let mut keys: Vec<&str> = dropped
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut expected = KEYS.to_vec();
        expected.extend(["tags", "fields", "dropped"]);
        keys.sort_unstable();
        expected.sort_unstable();
        assert_eq!(keys, expected);
    }
}

#[test]
fn filters_file_builds_its_stack_through_the_registry() {
    let registry = loggr::registry().unwrap();
    let filters = filters_from_toml(
        "[[filters]]\ntype = \"buzzsaw\"\nname = \"sleepy\"\nfilters = [\"sleep\"]\n",
        &registry,
    )
    .unwrap();
    assert_eq!(filters[0].name(), "sleepy");
    let out = run_filtered(
        b"Dec 10 06:55:46 h lcfg-sleep: Waking up\nDec 10 09:32:20 LabSZ sshd[2]: Accepted password for a from b\n",
        &filters,
    );
    assert_eq!(out[0]["tags"], json(r#"["acpi_wake", "sleep"]"#));
    assert_eq!(out[0].get("dropped"), None);
    assert_eq!(out[1]["dropped"], true); // no ssh filter in this stack

    // An empty file is an empty stack: everything kept, with the extra keys.
    let none = filters_from_toml("", &registry).unwrap();
    let out = run_filtered(b"Dec 10 06:55:46 h x: y\n", &none);
    assert_eq!(
        (&out[0]["tags"], &out[0]["fields"]),
        (&json("[]"), &json("{}"))
    );

    let error = filters_from_toml("[[filters]]\ntype = \"nope\"\n", &registry)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("filters[0]") && error.contains("nope"),
        "{error}"
    );
    let error = filters_from_toml(
        "[[filters]]\ntype = \"buzzsaw\"\nfilters = [\"x\"]\n",
        &registry,
    )
    .unwrap_err()
    .to_string();
    assert!(error.contains("filters[0] (type `buzzsaw`)"), "{error}");
    assert!(filters_from_toml("[[sinks]]\ntype = \"stdout\"\n", &registry).is_err());
}
