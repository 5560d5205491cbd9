//! Serialize → parse round trips for random events: RFC 5424 with structured data, RFC 3164,
//! JSON and rsyslog's file format each give back the fields the format can carry.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use jiff::Timestamp;
use loggr_core::syslog::{
    serialize, JsonParser, Rfc3164Parser, Rfc3339Parser, Rfc5424Parser, SyslogOptions,
};
use loggr_core::{Event, Facility, ParseContext, Parser, Severity, StructuredData, Text};
use proptest::prelude::*;

fn options(year: Option<i16>, tz: &str) -> SyslogOptions {
    SyslogOptions {
        year,
        timezone: Some(tz.to_owned()),
        trusted_properties: false,
        ..SyslogOptions::default()
    }
}

fn cx() -> ParseContext {
    ParseContext {
        received_at: "2024-06-15T12:00:00Z".parse().unwrap(),
        peer: None,
    }
}

fn text(pattern: &'static str) -> impl Strategy<Value = Text> {
    pattern.prop_map(Text::from)
}

fn structured_data() -> impl Strategy<Value = StructuredData> {
    let param = ("[a-zA-Z][a-zA-Z0-9_.-]{0,31}", "\\PC{0,20}");
    let element = (
        "[a-zA-Z][a-zA-Z0-9_.-]{0,20}(@[0-9]{1,6})?",
        prop::collection::vec(param, 0..4),
    );
    prop::collection::vec(element, 0..4).prop_map(|elements| {
        let mut data = StructuredData::default();
        let mut seen = std::collections::BTreeSet::new();
        for (id, params) in elements {
            if !seen.insert(id.clone()) {
                continue;
            }
            // The canonical JSON form keeps a repeated param's values together, in order
            // (`{"f": ["a", "b"]}`): a param repeated after another name comes back next to
            // its first value. Generate the params in that grouped order.
            let mut grouped: Vec<loggr_core::SdParam> = Vec::new();
            for (name, value) in params {
                let param = loggr_core::SdParam {
                    name: name.into(),
                    value: value.into(),
                };
                match grouped.iter().rposition(|p| p.name == param.name) {
                    Some(last) => grouped.insert(last + 1, param),
                    None => grouped.push(param),
                }
            }
            data.elements.push(loggr_core::SdElement {
                id: id.into(),
                params: grouped,
            });
        }
        data
    })
}

fn base_event(
    code: (u8, u8),
    seconds: i64,
    nanos: i32,
    host: Option<Text>,
    app: Option<Text>,
    pid: Option<Text>,
    message: Option<Text>,
) -> Event {
    let mut event = Event::empty("2024-06-15T12:00:00Z".parse().unwrap());
    event.facility = Facility::from_code(code.0).unwrap();
    event.severity = Severity::from_code(code.1).unwrap();
    event.timestamp = Some(Timestamp::new(seconds, nanos).unwrap());
    event.hostname = host;
    event.app_name = app;
    event.procid = pid;
    event.message = message;
    event
}

fn header(event: &Event) -> impl PartialEq + std::fmt::Debug + '_ {
    (
        event.facility,
        event.severity,
        event.timestamp,
        event.hostname.as_deref(),
        event.app_name.as_deref(),
        event.procid.as_deref(),
        event.message.as_deref(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn rfc5424_round_trips(
        code in (0u8..24, 0u8..8),
        seconds in 0i64..4_000_000_000,
        nanos in 0i32..1_000_000_000,
        host in proptest::option::of(text("[a-zA-Z0-9][!-~]{1,60}")),
        app in proptest::option::of(text("[a-zA-Z0-9][!-~]{0,47}")),
        pid in proptest::option::of(text("[0-9a-f]{1,10}")),
        msgid in proptest::option::of(text("[A-Z][!-~]{0,31}")),
        sd in structured_data(),
        message in proptest::option::of(text("\\PC{1,80}")),
        bom in any::<bool>(),
    ) {
        let mut event = base_event(code, seconds, nanos, host, app, pid, message);
        event.msgid = msgid;
        event.structured_data = sd;
        if bom && event.message.is_some() {
            event.add_tag("_bom");
        }
        let line = serialize::rfc5424(&event);
        let parsed = Rfc5424Parser::new(&options(None, "UTC"))
            .parse(Bytes::from(line.clone()), &cx())
            .map_err(|e| TestCaseError::fail(format!("{e}: {line}")))?;
        prop_assert_eq!(header(&parsed), header(&event), "{}", line);
        prop_assert_eq!(&parsed.msgid, &event.msgid);
        prop_assert_eq!(&parsed.structured_data, &event.structured_data, "{}", line);
        prop_assert_eq!(&parsed.tags, &event.tags);
    }

    #[test]
    fn rfc3164_round_trips(
        code in (0u8..24, 0u8..8),
        year in 2001i16..2030,
        seconds_in_year in 0i64..(365 * 86_400),
        tz in prop::sample::select(vec!["UTC", "Asia/Kolkata", "+05:45", "-03:00"]),
        host in text("[a-zA-Z0-9][a-zA-Z0-9._/-]{0,30}"),
        app in text("[a-zA-Z%][a-zA-Z0-9_./()-]{0,30}"),
        pid in proptest::option::of(text("[0-9]{1,7}")),
        message in proptest::option::of(text("[!-~]\\PC{0,80}")),
    ) {
        let zone = loggr_core::syslog::time::time_zone(tz).unwrap();
        // A wall-clock second of `year` in the zone.
        let start = jiff::civil::date(year, 1, 1).at(0, 0, 0, 0).to_zoned(zone).unwrap();
        let at = start.timestamp().as_second() + seconds_in_year;
        let event = base_event(code, at, 0, Some(host), Some(app), pid, message);
        let line = serialize::rfc3164(&event, &loggr_core::syslog::time::time_zone(tz).unwrap());
        let parsed = Rfc3164Parser::new(&options(Some(year), tz))
            .unwrap()
            .parse(Bytes::from(line.clone()), &cx())
            .map_err(|e| TestCaseError::fail(format!("{e}: {line}")))?;
        prop_assert_eq!(header(&parsed), header(&event), "{}", line);
    }

    #[test]
    fn rsyslog_file_lines_round_trip(
        code in (0u8..24, 0u8..8),
        seconds in 0i64..4_000_000_000,
        micros in 0i32..1_000_000,
        tz in prop::sample::select(vec!["UTC", "Europe/Paris", "America/New_York", "-03:30"]),
        host in text("[a-zA-Z0-9][a-zA-Z0-9._/-]{0,30}"),
        tagged in proptest::option::of((
            text("[a-zA-Z%][a-zA-Z0-9_./()-]{0,30}"),
            proptest::option::of(text("[0-9]{1,7}")),
        )),
        message in proptest::option::of(text("[a-zA-Z][a-zA-Z0-9 ,.=]{0,80}")),
    ) {
        let (app, pid) = tagged.map_or((None, None), |(app, pid)| (Some(app), pid));
        let event = base_event(code, seconds, micros * 1000, Some(host), app, pid, message);
        let line = serialize::rsyslog_file(&event, &loggr_core::syslog::time::time_zone(tz).unwrap());
        let parsed = Rfc3339Parser::new(&options(None, tz))
            .unwrap()
            .parse(Bytes::from(line.clone()), &cx())
            .map_err(|e| TestCaseError::fail(format!("{e}: {line}")))?;
        // File lines carry no PRI: user.notice.
        let mut expected = event;
        expected.facility = Facility::User;
        expected.severity = Severity::Notice;
        prop_assert_eq!(header(&parsed), header(&expected), "{}", line);
    }

    #[test]
    fn json_round_trips_everything(
        code in (0u8..24, 0u8..8),
        seconds in 0i64..4_000_000_000,
        nanos in 0i32..1_000_000_000,
        host in proptest::option::of(text("\\PC{0,20}")),
        app in proptest::option::of(text("\\PC{0,20}")),
        pid in proptest::option::of(text("\\PC{0,8}")),
        sd in structured_data(),
        message in proptest::option::of(text("\\PC{0,80}")),
        tags in prop::collection::btree_set("[a-z_]{1,10}", 0..4),
        fields in prop::collection::btree_map("[a-z_]{1,10}", any::<i64>(), 0..4),
    ) {
        let mut event = base_event(code, seconds, nanos, host, app, pid, message);
        event.structured_data = sd;
        for tag in tags {
            event.add_tag(tag);
        }
        for (name, value) in fields {
            event.set_field(name, value);
        }
        let line = serialize::json(&event).unwrap();
        let parsed = JsonParser.parse(Bytes::from(line.clone()), &cx()).unwrap();
        prop_assert_eq!(parsed, event, "{}", line);
    }
}
