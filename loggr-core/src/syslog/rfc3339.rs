//! RFC 3339 file lines: what rsyslog writes with `RSYSLOG_FileFormat` and BuzzSaw reads.
//!
//! ```text
//! TIMESTAMP SP HOSTNAME SP [TAG] MSG
//! 2026-11-21T09:59:59.500000+01:00 web1 sshd[812]: Accepted publickey for alice
//! ```
//!
//! TIMESTAMP is RFC 3339 with up to 9 fraction digits; without offset it is read in
//! [`Rfc3339Parser::tz`]. HOSTNAME is always the first word. TAG (`app[pid]:`, `app[pid]`,
//! `app:`) is optional, as in [`Rfc3164Parser`](super::Rfc3164Parser). File lines carry no
//! PRI: the event is `user.notice`.

use bytes::Bytes;
use jiff::tz::TimeZone;

use super::rfc3164::{parse_body, Body, HostRule};
use super::time::{parse_rfc3339, resolve_civil, TimeZoneError};
use super::{trusted, SyslogOptions};
use crate::event::Event;
use crate::parser::{ParseContext, ParseError, Parser};

/// The RFC 3339 file-line parser.
#[derive(Clone, Debug, PartialEq)]
pub struct Rfc3339Parser {
    /// The zone of timestamps without offset.
    pub tz: TimeZone,
    /// Turn rsyslog's `@[_PID=…]` suffix of MSG into fields.
    pub trusted_properties: bool,
}

impl Default for Rfc3339Parser {
    /// UTC for timestamps without offset.
    fn default() -> Self {
        Rfc3339Parser {
            tz: TimeZone::UTC,
            trusted_properties: true,
        }
    }
}

impl Rfc3339Parser {
    /// A parser with these options.
    ///
    /// # Errors
    ///
    /// A [`TimeZoneError`] for an unknown `options.timezone`.
    pub fn new(options: &SyslogOptions) -> Result<Self, TimeZoneError> {
        Ok(Rfc3339Parser {
            tz: options.time_zone()?,
            trusted_properties: options.trusted_properties,
        })
    }
}

impl Parser for Rfc3339Parser {
    fn parse(&self, frame: Bytes, cx: &ParseContext) -> Result<Event, ParseError> {
        let bytes: &[u8] = &frame;
        let stamp = parse_rfc3339(bytes, 9, true)
            .map_err(|error| ParseError::syntax("expected an RFC 3339 timestamp", error.at))?;
        let instant = match stamp.instant {
            Some(instant) => instant,
            None => resolve_civil(stamp.civil, &self.tz)
                .ok_or_else(|| ParseError::syntax("timestamp does not exist", 0))?,
        };
        if bytes.get(stamp.len) != Some(&b' ') {
            return Err(ParseError::syntax(
                "expected SP after the timestamp",
                stamp.len,
            ));
        }
        let at = stamp.len + 1;
        if matches!(bytes.get(at), None | Some(b' ')) {
            return Err(ParseError::syntax("expected a hostname", at));
        }
        let mut event = Event::empty(cx.received_at);
        event.timestamp = Some(instant);
        parse_body(
            &frame,
            Body {
                at,
                host: HostRule::Always,
            },
            &mut event,
        );
        if self.trusted_properties {
            trusted::extract(&mut event);
        }
        Ok(event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(input: &str) -> Result<Event, ParseError> {
        Rfc3339Parser::default().parse(Bytes::from(input.to_owned()), &ParseContext::now())
    }

    #[test]
    fn file_lines_with_and_without_tag() {
        let event = parse("2026-11-21T09:59:59.500000+01:00 web1 sshd[812]: Accepted").unwrap();
        assert_eq!(
            event.timestamp.unwrap().to_string(),
            "2026-11-21T08:59:59.5Z"
        );
        assert_eq!(event.hostname.as_deref(), Some("web1"));
        assert_eq!(event.app_name.as_deref(), Some("sshd"));
        assert_eq!(event.procid.as_deref(), Some("812"));
        assert_eq!(event.message_str(), "Accepted");
        let event = parse("2026-11-21T09:59:59Z web1 just a message").unwrap();
        assert_eq!(event.app_name, None);
        assert_eq!(event.message_str(), "just a message");
        let event = parse("2026-11-21T09:59:59 web1: kernel: x").unwrap();
        assert_eq!(event.hostname.as_deref(), Some("web1:"));
        assert_eq!(event.timestamp.unwrap().to_string(), "2026-11-21T09:59:59Z");
    }

    #[test]
    fn rejects_lines_without_stamp_or_host() {
        for bad in [
            "",
            "web1 x",
            "2026-11-21T09:59:59Z",
            "2026-11-21T09:59:59Z  x",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
