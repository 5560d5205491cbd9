//! Serializers back out: RFC 5424 (with structured data), RFC 3164, loggr's JSON, and
//! rsyslog's file format (`RSYSLOG_FileFormat`).
//!
//! Every serializer's output reads back with the matching parser into the same fields, as far
//! as the format can carry them (RFC 3164 has no year, sub-second time, MSGID or structured
//! data; file lines keep microseconds). Header fields are made valid on the way out:
//! characters RFC 5424 forbids in a field become `_` and over-long fields are cut, an absent
//! field is `-`.

use std::fmt::Write as _;

use jiff::tz::TimeZone;
use jiff::Timestamp;

use super::rfc5424::BOM;
use super::{pri, BOM_TAG};
use crate::event::{Event, Text};

fn push_field(out: &mut String, field: Option<&Text>, max: usize, forbidden: &[u8]) {
    let value: &[u8] = field.map_or(&b""[..], |text| str::as_bytes(text));
    if value.is_empty() {
        out.push('-');
        return;
    }
    for &byte in value.iter().take(max) {
        if (33..=126).contains(&byte) && !forbidden.contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push('_');
        }
    }
}

/// An RFC 3339 timestamp, in UTC when its year is 0000–9999 there (RFC 3339 has four-digit
/// years). A year-0000 or year-9999 stamp with an offset can fall just outside that range in
/// UTC: it is written with the extreme offset that brings it back (`+23:59` or `-23:59`), so
/// it reads back as the same instant. An instant no offset can write is `-`.
fn push_timestamp(out: &mut String, at: Timestamp) {
    let extreme = 23 * 3600 + 59 * 60;
    for (seconds, suffix) in [(0, "Z"), (extreme, "+23:59"), (-extreme, "-23:59")] {
        let Ok(offset) = jiff::tz::Offset::from_seconds(seconds) else {
            continue;
        };
        let civil = offset.to_datetime(at);
        if (0..=9999).contains(&civil.year()) {
            let _ = write!(out, "{civil}{suffix}");
            return;
        }
    }
    out.push('-');
}

/// The event as an RFC 5424 message (no framing, no trailing LF). The timestamp is written
/// in UTC with as many fraction digits as it needs (up to 9), unless that would take it out
/// of the years 0000–9999 (see `push_timestamp`).
pub fn rfc5424(event: &Event) -> String {
    let mut out = String::with_capacity(64 + event.estimated_size());
    let _ = write!(out, "<{}>1 ", pri(event));
    match event.timestamp {
        Some(at) => push_timestamp(&mut out, at),
        None => out.push('-'),
    }
    out.push(' ');
    push_field(&mut out, event.hostname.as_ref(), 255, b"");
    out.push(' ');
    push_field(&mut out, event.app_name.as_ref(), 48, b"");
    out.push(' ');
    push_field(&mut out, event.procid.as_ref(), 128, b"");
    out.push(' ');
    push_field(&mut out, event.msgid.as_ref(), 32, b"");
    out.push(' ');
    if event.structured_data.is_empty() {
        out.push('-');
    }
    for element in &event.structured_data.elements {
        out.push('[');
        push_field(&mut out, Some(&element.id), 32, b"=]\"");
        for param in &element.params {
            out.push(' ');
            push_field(&mut out, Some(&param.name), 32, b"=]\"");
            out.push_str("=\"");
            for ch in param.value.chars() {
                if matches!(ch, '"' | '\\' | ']') {
                    out.push('\\');
                }
                out.push(ch);
            }
            out.push('"');
        }
        out.push(']');
    }
    // A BOM is written even before an empty MSG: the parser notes it with the tag either way.
    let bom = event.has_tag(BOM_TAG);
    let message = event.message.as_deref().unwrap_or_default();
    if !message.is_empty() || bom {
        out.push(' ');
        if bom {
            out.push_str(std::str::from_utf8(BOM).unwrap_or_default());
        }
        out.push_str(message);
    }
    out
}

fn push_tag(out: &mut String, event: &Event) {
    let mut bytes = Vec::with_capacity(32);
    crate::encode::tag(&mut bytes, event);
    out.push_str(&String::from_utf8_lossy(&bytes));
}

fn host_word(event: &Event) -> String {
    let mut bytes = Vec::with_capacity(32);
    crate::encode::host(&mut bytes, event);
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The event as an RFC 3164 message: `<PRI>Mmm dd hh:mm:ss HOST app[pid]: MSG`, the time
/// (the reported one, else the reception time) written in `tz`, to the second.
pub fn rfc3164(event: &Event, tz: &TimeZone) -> String {
    let at = event.timestamp.unwrap_or(event.received_at);
    let local = at.to_zoned(tz.clone());
    let mut out = String::with_capacity(48 + event.estimated_size());
    let _ = write!(
        out,
        "<{}>{} {:>2} {:02}:{:02}:{:02} {} ",
        pri(event),
        super::time::month_abbrev(local.month()),
        local.day(),
        local.hour(),
        local.minute(),
        local.second(),
        host_word(event),
    );
    push_tag(&mut out, event);
    out.push_str(event.message_str());
    out
}

/// The event as a line of rsyslog's `RSYSLOG_FileFormat`:
/// `2026-11-21T09:59:59.500000+01:00 HOST app[pid]: MSG`, the time in `tz` with microseconds.
pub fn rsyslog_file(event: &Event, tz: &TimeZone) -> String {
    let at: Timestamp = event.timestamp.unwrap_or(event.received_at);
    let local = at.to_zoned(tz.clone());
    let mut out = String::with_capacity(48 + event.estimated_size());
    let offset = local.offset().seconds();
    let sign = if offset < 0 { '-' } else { '+' };
    let offset = offset.unsigned_abs();
    let _ = write!(
        out,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}{}{:02}:{:02} {} ",
        local.year(),
        local.month(),
        local.day(),
        local.hour(),
        local.minute(),
        local.second(),
        local.subsec_nanosecond() / 1000,
        sign,
        offset / 3600,
        offset % 3600 / 60,
        host_word(event),
    );
    push_tag(&mut out, event);
    out.push_str(event.message_str());
    out
}

/// The event in loggr's canonical JSON form, on one line.
///
/// # Errors
///
/// Serialization of an `Event` does not fail in practice; the error is serde_json's.
pub fn json(event: &Event) -> Result<String, serde_json::Error> {
    serde_json::to_string(event)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Facility, Severity};

    fn sample() -> Event {
        let mut event = Event::new("disk \"full\" ]");
        event.timestamp = Some("2003-10-11T22:14:15.003Z".parse().unwrap());
        event.facility = Facility::Local4;
        event.severity = Severity::Notice;
        event.hostname = Some("web 1".into());
        event.app_name = Some("app".into());
        event.procid = Some("42".into());
        event.structured_data.push("id@1", "k", "a\"b\\c]d");
        event
    }

    #[test]
    fn rfc5424_escapes_and_sanitizes() {
        assert_eq!(
            rfc5424(&sample()),
            "<165>1 2003-10-11T22:14:15.003Z web_1 app 42 - [id@1 k=\"a\\\"b\\\\c\\]d\"] \
             disk \"full\" ]"
        );
    }

    #[test]
    fn rfc5424_keeps_a_bom_before_an_empty_message() {
        let mut event = Event::empty("2024-01-01T00:00:00Z".parse().unwrap());
        event.add_tag(BOM_TAG);
        assert_eq!(rfc5424(&event), "<13>1 - - - - - - \u{feff}");
    }

    #[test]
    fn rfc5424_timestamps_stay_within_four_digit_years() {
        let mut event = Event::empty("2024-01-01T00:00:00Z".parse().unwrap());
        let mut stamp = |at: &str| {
            event.timestamp = Some(at.parse().unwrap());
            let line = rfc5424(&event);
            line["<13>1 ".len()..line.len() - " - - - - -".len()].to_owned()
        };
        assert_eq!(stamp("0000-01-01T00:00:00Z"), "0000-01-01T00:00:00Z");
        assert_eq!(
            stamp("0000-01-01T00:00:00.5+23:59"),
            "0000-01-01T00:00:00.5+23:59"
        );
        assert_eq!(stamp("9999-12-30T12:00:00-01:00"), "9999-12-30T13:00:00Z");
        assert_eq!(stamp("-000002-01-01T00:00:00Z"), "-");
    }

    #[test]
    fn rfc3164_and_file_lines() {
        let paris = jiff::tz::TimeZone::get("Europe/Paris").unwrap();
        assert_eq!(
            rfc3164(&sample(), &TimeZone::UTC),
            "<165>Oct 11 22:14:15 web_1 app[42]: disk \"full\" ]"
        );
        let mut early = sample();
        early.timestamp = Some("2003-03-02T01:02:03Z".parse().unwrap());
        assert!(rfc3164(&early, &paris).starts_with("<165>Mar  2 02:02:03 "));
        assert_eq!(
            rsyslog_file(&sample(), &paris),
            "2003-10-12T00:14:15.003000+02:00 web_1 app[42]: disk \"full\" ]"
        );
    }
}
