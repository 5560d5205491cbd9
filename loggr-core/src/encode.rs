//! Fast line encoders for sinks: an event's canonical JSON and rsyslog's file line, written
//! straight into a reusable byte buffer.
//!
//! [`json`] produces exactly the bytes `serde_json::to_vec(&event)` does (the tests check
//! it on generated events), without its per-call formatting machinery: string escaping copies
//! whole runs of plain bytes at once, timestamps and integers are written digit by digit, and
//! nothing is allocated. Sinks that write millions of events a second use these.

use jiff::Timestamp;

use crate::event::{Event, StructuredData, Text, Value};

/// Appends `text` as a JSON string (quotes included), escaping as `serde_json` does.
pub fn json_string(out: &mut Vec<u8>, text: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let bytes = text.as_bytes();
    let mut start = 0;
    for (at, &byte) in bytes.iter().enumerate() {
        let escape: &[u8] = match byte {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0x00..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..at]);
        if escape.is_empty() {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(byte >> 4)]);
            out.push(HEX[usize::from(byte & 0xf)]);
        } else {
            out.extend_from_slice(escape);
        }
        start = at + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Appends a non-negative integer in decimal, at least `width` digits (zero-padded).
fn push_digits(out: &mut Vec<u8>, mut value: u64, width: usize) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 && digits.len() - at >= width {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// Writes `value` (0–99) as two digits at `at`.
fn put_two(text: &mut [u8], at: usize, value: u32) {
    text[at] = b'0' + (value / 10 % 10) as u8;
    text[at + 1] = b'0' + (value % 10) as u8;
}

fn push_i64(out: &mut Vec<u8>, value: i64) {
    if value < 0 {
        out.push(b'-');
    }
    push_digits(out, value.unsigned_abs(), 1);
}

/// Civil date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// How many fraction digits to write.
#[derive(Clone, Copy)]
enum Fraction {
    /// As few as the value needs (none when zero), as jiff prints timestamps.
    Minimal,
    /// Always six (microseconds), as rsyslog does.
    Micros,
}

/// Appends `at` as RFC 3339 in UTC (`Z` or `+00:00`); `false` when its year is outside
/// 0000–9999 (nothing written then).
fn push_utc(out: &mut Vec<u8>, at: Timestamp, fraction: Fraction, zulu: bool) -> bool {
    // Before 1970 jiff keeps a negative sub-second part: floor to whole seconds.
    let (seconds, nanos) = match at.subsec_nanosecond() {
        n if n < 0 => (at.as_second() - 1, (n + 1_000_000_000) as u32),
        n => (at.as_second(), n as u32),
    };
    let (year, month, day) = civil_from_days(seconds.div_euclid(86_400));
    if !(0..=9999).contains(&year) {
        return false;
    }
    let of_day = seconds.rem_euclid(86_400) as u32;
    // Formatted on the stack and appended once: one bounds check and copy instead of one
    // per part (this runs for every event a file sink writes).
    let mut text = *b"0000-00-00T00:00:00.000000000+00:00";
    let year = year as u32;
    put_two(&mut text, 0, year / 100);
    put_two(&mut text, 2, year % 100);
    put_two(&mut text, 5, month);
    put_two(&mut text, 8, day);
    put_two(&mut text, 11, of_day / 3600);
    put_two(&mut text, 14, of_day / 60 % 60);
    put_two(&mut text, 17, of_day % 60);
    // The fraction's digits and their value: as few as it needs, or always microseconds.
    let (digits, mut value) = match fraction {
        Fraction::Minimal if nanos > 0 => {
            let (mut digits, mut value) = (9, nanos);
            while value % 10 == 0 {
                value /= 10;
                digits -= 1;
            }
            (digits, value)
        }
        Fraction::Minimal => (0, 0),
        Fraction::Micros => (6, nanos / 1000),
    };
    let mut end = 19;
    if digits > 0 {
        for at in (20..20 + digits).rev() {
            text[at] = b'0' + (value % 10) as u8;
            value /= 10;
        }
        end = 20 + digits;
    }
    let suffix: &[u8] = if zulu { b"Z" } else { b"+00:00" };
    text[end..end + suffix.len()].copy_from_slice(suffix);
    out.extend_from_slice(&text[..end + suffix.len()]);
    true
}

fn push_timestamp_json(out: &mut Vec<u8>, at: Timestamp) {
    out.push(b'"');
    if !push_utc(out, at, Fraction::Minimal, true) {
        // Years jiff writes with six digits and a sign: let it.
        out.extend_from_slice(at.to_string().as_bytes());
    }
    out.push(b'"');
}

fn push_optional(out: &mut Vec<u8>, text: Option<&Text>) {
    match text {
        Some(text) => json_string(out, text),
        None => out.extend_from_slice(b"null"),
    }
}

fn push_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::String(text) => json_string(out, text),
        Value::Int(number) => push_i64(out, *number),
        Value::Bool(flag) => out.extend_from_slice(if *flag { b"true" } else { b"false" }),
        Value::Float(number) => {
            if serde_json::to_writer(&mut *out, number).is_err() {
                out.extend_from_slice(b"null");
            }
        }
        Value::List(items) => {
            out.push(b'[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                push_value(out, item);
            }
            out.push(b']');
        }
    }
}

fn push_structured_data(out: &mut Vec<u8>, sd: &StructuredData) {
    out.push(b'{');
    for (index, element) in sd.elements.iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        json_string(out, &element.id);
        out.extend_from_slice(b":{");
        let mut first = true;
        for (at, param) in element.params.iter().enumerate() {
            if element.params[..at].iter().any(|p| p.name == param.name) {
                continue; // written with its first occurrence
            }
            if !first {
                out.push(b',');
            }
            first = false;
            json_string(out, &param.name);
            out.push(b':');
            let repeats = element.params[at + 1..]
                .iter()
                .any(|p| p.name == param.name);
            if repeats {
                out.push(b'[');
                for (n, value) in element.values(&param.name).enumerate() {
                    if n > 0 {
                        out.push(b',');
                    }
                    json_string(out, value);
                }
                out.push(b']');
            } else {
                json_string(out, &param.value);
            }
        }
        out.push(b'}');
    }
    out.push(b'}');
}

/// Appends the event's canonical JSON (the same bytes as `serde_json::to_vec(event)`).
pub fn json(out: &mut Vec<u8>, event: &Event) {
    out.extend_from_slice(b"{\"id\":\"");
    out.extend_from_slice(&event.content_id().hex_bytes());
    out.extend_from_slice(b"\",\"received_at\":");
    push_timestamp_json(out, event.received_at);
    out.extend_from_slice(b",\"timestamp\":");
    match event.timestamp {
        Some(at) => push_timestamp_json(out, at),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"facility\":");
    push_digits(out, u64::from(event.facility.code()), 1);
    out.extend_from_slice(b",\"severity\":");
    push_digits(out, u64::from(event.severity.code()), 1);
    out.extend_from_slice(b",\"hostname\":");
    push_optional(out, event.hostname.as_ref());
    out.extend_from_slice(b",\"app_name\":");
    push_optional(out, event.app_name.as_ref());
    out.extend_from_slice(b",\"procid\":");
    push_optional(out, event.procid.as_ref());
    out.extend_from_slice(b",\"msgid\":");
    push_optional(out, event.msgid.as_ref());
    out.extend_from_slice(b",\"structured_data\":");
    push_structured_data(out, &event.structured_data);
    out.extend_from_slice(b",\"message\":");
    push_optional(out, event.message.as_ref());
    out.extend_from_slice(b",\"tags\":[");
    for (index, tag) in event.tags.iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        json_string(out, tag);
    }
    out.extend_from_slice(b"],\"fields\":{");
    for (index, (name, value)) in event.fields.iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        json_string(out, name);
        out.push(b':');
        push_value(out, value);
    }
    out.push(b'}');
    if let Some(raw) = &event.raw {
        match std::str::from_utf8(raw) {
            Ok(text) => {
                out.extend_from_slice(b",\"raw\":");
                json_string(out, text);
            }
            Err(_) => {
                out.extend_from_slice(b",\"raw_base64\":\"");
                out.extend_from_slice(crate::event::base64_encode(raw).as_bytes());
                out.push(b'"');
            }
        }
    }
    out.push(b'}');
}

/// Appends the event as a line of rsyslog's `RSYSLOG_FileFormat` in UTC (no LF):
/// `2026-11-21T09:59:59.500000+00:00 HOST app[pid]: MSG`, the same text as
/// [`serialize::rsyslog_file`](crate::syslog::serialize::rsyslog_file) with the UTC zone.
pub fn rsyslog_line(out: &mut Vec<u8>, event: &Event) {
    let at = event.timestamp.unwrap_or(event.received_at);
    if !push_utc(out, at, Fraction::Micros, false) {
        let line = crate::syslog::serialize::rsyslog_file(event, &jiff::tz::TimeZone::UTC);
        out.extend_from_slice(line.as_bytes());
        return;
    }
    out.push(b' ');
    host(out, event);
    out.push(b' ');
    tag(out, event);
    out.extend_from_slice(event.message_str().as_bytes());
}

/// Appends the host as one word for traditional syslog lines: spaces become `_`, and a
/// missing host is `-`.
pub fn host(out: &mut Vec<u8>, event: &Event) {
    match event.hostname.as_deref().filter(|h| !h.is_empty()) {
        Some(host) => out.extend(host.bytes().map(|b| if b == b' ' { b'_' } else { b })),
        None => out.push(b'-'),
    }
}

/// Appends the traditional TAG, `app[pid]: ` (`app: ` without pid, nothing without app); a
/// space or `[` in the app name and a space or `]` in the pid become `_`.
pub fn tag(out: &mut Vec<u8>, event: &Event) {
    let Some(app) = event.app_name.as_deref().filter(|a| !a.is_empty()) else {
        return;
    };
    out.extend(
        app.bytes()
            .map(|b| if b == b' ' || b == b'[' { b'_' } else { b }),
    );
    if let Some(pid) = event.procid.as_deref().filter(|p| !p.is_empty()) {
        out.push(b'[');
        out.extend(
            pid.bytes()
                .map(|b| if b == b' ' || b == b']' { b'_' } else { b }),
        );
        out.push(b']');
    }
    out.extend_from_slice(b": ");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Facility, Severity};
    use proptest::prelude::*;

    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            "[ -~]{0,40}",
            "\\PC{0,20}",
            proptest::collection::vec(any::<char>(), 0..12).prop_map(|c| c.into_iter().collect()),
        ]
    }

    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            text().prop_map(Value::from),
            any::<i64>().prop_map(Value::Int),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::Float),
            any::<bool>().prop_map(Value::Bool),
        ];
        leaf.prop_recursive(2, 8, 4, |inner| {
            proptest::collection::vec(inner, 0..4).prop_map(Value::List)
        })
    }

    prop_compose! {
        fn event()(
            message in proptest::option::of(text()),
            host in proptest::option::of(text()),
            app in proptest::option::of(text()),
            seconds in -62_135_596_800i64..253_402_300_799,
            nanos in prop_oneof![Just(0u32), 0u32..1_000_000_000, Just(500_000_000), Just(123_000)],
            reported in any::<bool>(),
            facility in 0u8..24,
            severity in 0u8..8,
            sd in proptest::collection::vec((text(), text(), text()), 0..4),
            tags in proptest::collection::vec(text(), 0..3),
            fields in proptest::collection::vec((text(), value()), 0..4),
            raw in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..16)),
        ) -> Event {
            let at = Timestamp::new(seconds, nanos as i32).unwrap();
            let mut event = Event::empty(at);
            event.message = message.map(Text::from);
            event.hostname = host.map(Text::from);
            event.app_name = app.map(Text::from);
            event.procid = Some("42".into());
            event.timestamp = reported.then_some(at);
            event.facility = Facility::from_code(facility).unwrap();
            event.severity = Severity::from_code(severity).unwrap();
            for (id, name, value) in sd {
                event.structured_data.push(id.clone(), name.clone(), value);
                event.structured_data.push(id, name, "again");
            }
            for tag in tags {
                event.add_tag(tag);
            }
            for (name, value) in fields {
                event.set_field(name, value);
            }
            event.raw = raw.map(bytes::Bytes::from);
            event
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn json_is_byte_for_byte_serde_json(event in event()) {
            let mut fast = Vec::new();
            json(&mut fast, &event);
            let reference = serde_json::to_vec(&event).unwrap();
            prop_assert_eq!(String::from_utf8_lossy(&fast), String::from_utf8_lossy(&reference));
        }

        #[test]
        fn rsyslog_lines_match_the_serializer(event in event()) {
            let mut fast = Vec::new();
            rsyslog_line(&mut fast, &event);
            let reference = crate::syslog::serialize::rsyslog_file(&event, &jiff::tz::TimeZone::UTC);
            prop_assert_eq!(String::from_utf8_lossy(&fast), reference);
        }
    }

    #[test]
    fn control_characters_are_escaped_like_serde_json() {
        let text = "a\"b\\c\n\r\t\u{8}\u{c}\u{1}\u{1f}é\u{7f}/";
        let mut fast = Vec::new();
        json_string(&mut fast, text);
        assert_eq!(fast, serde_json::to_vec(text).unwrap());
    }

    #[test]
    fn days_map_to_civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
        assert_eq!(civil_from_days(-719_528), (0, 1, 1));
    }
}
