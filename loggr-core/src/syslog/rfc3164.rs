//! RFC 3164 (BSD syslog), read as real devices send it.
//!
//! ```text
//! [<PRI>] [SP*] [TIMESTAMP[:] SP HOSTNAME SP] [TAG] MSG
//! ```
//!
//! - PRI is optional; without it the event is `user.notice` (RFC 3164 section 4.3.3). A `<`
//!   that does not start a valid PRI (0–191) is an error.
//! - TIMESTAMP is `Mmm dd hh:mm:ss` (month in any case, day space- or zero-padded or single
//!   digit), optionally with a year before the time (`Mar 7 2008 19:06:53`), a fraction, or a
//!   trailing `:`, or an RFC 3339 / ISO 8601 stamp (offset optional). Year-less stamps take
//!   [`Rfc3164Parser::year`], else the year that puts them nearest to the reception time;
//!   stamps without offset are read in [`Rfc3164Parser::tz`].
//! - HOSTNAME (a name, IPv4 or IPv6 address, `node/node`…) is the first word after a
//!   timestamp, unless that word is a TAG (contains `[` or ends with `:`). Without a timestamp
//!   there is no hostname (the RFC's HEADER is TIMESTAMP and HOSTNAME together).
//! - TAG is `app[pid]` with an optional `:`, or `app:`; app names may hold slashes, dots,
//!   parentheses (`sshd(pam_unix)[12750]:`, `postfix/smtpd[1713]:`, `%PIX-7-710005:`) and a
//!   version word (`syslogd 1.4.1:`, `BezelServices 255.10[94]:`). A word
//!   without `:` or `[pid]` is not a TAG: it belongs to MSG (RFC 3164 section 5.4 example 2).
//! - MSG is the rest, leading spaces removed; an empty MSG is `None`.

use bytes::Bytes;
use jiff::tz::TimeZone;
use jiff::Timestamp;

use super::time::{parse_bsd_stamp, parse_rfc3339, resolve_bsd, resolve_civil, TimeZoneError};
use super::{header_text, message_text, parse_pri, set_pri, trusted, SyslogOptions};
use crate::event::Event;
use crate::parser::{ParseContext, ParseError, Parser};

/// The RFC 3164 parser.
#[derive(Clone, Debug, PartialEq)]
pub struct Rfc3164Parser {
    /// The year of stamps without one; `None`: the year nearest to the reception time.
    pub year: Option<i16>,
    /// The zone of stamps without offset.
    pub tz: TimeZone,
    /// Turn rsyslog's `@[_PID=…]` suffix of MSG into fields.
    pub trusted_properties: bool,
}

impl Default for Rfc3164Parser {
    /// Year from the reception time, UTC.
    fn default() -> Self {
        Rfc3164Parser {
            year: None,
            tz: TimeZone::UTC,
            trusted_properties: true,
        }
    }
}

impl Rfc3164Parser {
    /// A parser with these options.
    ///
    /// # Errors
    ///
    /// A [`TimeZoneError`] for an unknown `options.timezone`.
    pub fn new(options: &SyslogOptions) -> Result<Self, TimeZoneError> {
        Ok(Rfc3164Parser {
            year: options.year,
            tz: options.time_zone()?,
            trusted_properties: options.trusted_properties,
        })
    }
}

/// Where the HOSTNAME / TAG / MSG part starts and how to read it.
#[derive(Clone, Copy)]
pub(crate) struct Body {
    /// Offset of the part.
    pub(crate) at: usize,
    /// Whether the first word is a HOSTNAME (unless it looks like a TAG).
    pub(crate) host: HostRule,
}

/// How the first word after the timestamp is read.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum HostRule {
    /// There is no HOSTNAME.
    None,
    /// The first word is a HOSTNAME unless it is a TAG.
    Detect,
    /// The first word is the HOSTNAME.
    Always,
}

fn word_end(bytes: &[u8], at: usize) -> usize {
    bytes
        .get(at..)
        .and_then(|rest| rest.iter().position(|&b| b == b' '))
        .map_or(bytes.len(), |offset| at + offset)
}

fn skip_spaces(bytes: &[u8], mut at: usize) -> usize {
    while bytes.get(at) == Some(&b' ') {
        at += 1;
    }
    at
}

/// Reads `[pid]` with an optional `:` at `open` (the `[`): sets the procid and returns where
/// the TAG ends, or `None` if there is no `]` before the next SP.
fn pid_suffix(frame: &Bytes, open: usize, event: &mut Event) -> Option<usize> {
    let bytes: &[u8] = frame;
    let close = bytes
        .get(open + 1..)?
        .iter()
        .position(|&b| b == b']' || b == b' ')
        .map(|offset| open + 1 + offset)
        .filter(|&close| bytes.get(close) == Some(&b']'))?;
    if close > open + 1 {
        event.procid = Some(header_text(frame, open + 1, close));
    }
    let after = close + 1;
    Some(if bytes.get(after) == Some(&b':') {
        after + 1
    } else {
        after
    })
}

/// A TAG of a few words ending in `[pid]:` (`-- root[2421]: ROOT LOGIN ON tty2` from
/// login(1)): the offset of its `[`. Only `[digits]:` followed by SP or the end counts, within
/// 64 bytes and two words, with no `:` before it.
fn multi_word_tag(bytes: &[u8], start: usize) -> Option<usize> {
    let region = bytes.get(start..(start + 64).min(bytes.len()))?;
    let open = start + region.iter().position(|&b| b == b'[' || b == b':')?;
    let words = bytes
        .get(start..open)?
        .iter()
        .filter(|&&b| b == b' ')
        .count();
    if bytes.get(open) != Some(&b'[') || open == start || words > 1 {
        return None;
    }
    let digits = bytes
        .get(open + 1..)?
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    let close = open + 1 + digits;
    let shape = digits > 0
        && bytes.get(close) == Some(&b']')
        && bytes.get(close + 1) == Some(&b':')
        && matches!(bytes.get(close + 2), None | Some(b' '));
    shape.then_some(open)
}

/// Reads `[HOSTNAME SP] [TAG] MSG` into the event.
pub(crate) fn parse_body(frame: &Bytes, body: Body, event: &mut Event) {
    let bytes: &[u8] = frame;
    let mut at = body.at;
    if body.host != HostRule::None {
        let end = word_end(bytes, at);
        let word = bytes.get(at..end).unwrap_or_default();
        let looks_like_tag = word.contains(&b'[') || word.last() == Some(&b':');
        if !word.is_empty() && (body.host == HostRule::Always || !looks_like_tag) {
            event.hostname = Some(header_text(frame, at, end));
            at = (end + 1).min(bytes.len());
        }
    }
    // TAG: app chars up to SP, `[`, or a `:` followed by SP or the end.
    let tag_start = skip_spaces(bytes, at);
    let mut scan = at;
    let mut tag_end = None;
    while let Some(&byte) = bytes.get(scan) {
        match byte {
            b' ' => {
                // `syslogd 1.4.1: restart`, `BezelServices 255.10[94]: …`: a version word
                // after the program name belongs to the TAG.
                if scan > tag_start && bytes.get(scan + 1).is_some_and(u8::is_ascii_digit) {
                    let mut end = scan + 1;
                    while bytes
                        .get(end)
                        .is_some_and(|b| b.is_ascii_digit() || *b == b'.')
                    {
                        end += 1;
                    }
                    tag_end = match bytes.get(end) {
                        Some(b':') if matches!(bytes.get(end + 1), None | Some(b' ')) => {
                            Some((end, end + 1))
                        }
                        Some(b'[') => pid_suffix(frame, end, event).map(|after| (end, after)),
                        _ => None,
                    };
                }
                break;
            }
            b'[' => {
                tag_end = pid_suffix(frame, scan, event).map(|after| (scan, after));
                break;
            }
            b':' if matches!(bytes.get(scan + 1), None | Some(b' ')) => {
                tag_end = Some((scan, scan + 1));
                break;
            }
            _ => scan += 1,
        }
    }
    if tag_end.is_none() {
        if let Some(open) = multi_word_tag(bytes, tag_start) {
            tag_end = pid_suffix(frame, open, event).map(|after| (open, after));
        }
    }
    let msg_start = match tag_end {
        Some((app_end, after)) => {
            if app_end > tag_start {
                event.app_name = Some(header_text(frame, tag_start, app_end));
            }
            after
        }
        None => tag_start,
    };
    event.message = message_text(frame, skip_spaces(bytes, msg_start), event);
}

/// Reads an optional timestamp at `at`: its instant (if any) and where the rest starts.
fn timestamp(
    parser: &Rfc3164Parser,
    bytes: &[u8],
    at: usize,
    received_at: Timestamp,
) -> Result<Option<(Option<Timestamp>, usize)>, ParseError> {
    let rest = bytes.get(at..).unwrap_or_default();
    let (instant, len) = if rest.first().is_some_and(u8::is_ascii_digit) {
        match parse_rfc3339(rest, 9, true) {
            Ok(stamp) => {
                let instant = match stamp.instant {
                    Some(instant) => instant,
                    None => resolve_civil(stamp.civil, &parser.tz)
                        .ok_or_else(|| ParseError::syntax("timestamp does not exist", at))?,
                };
                (instant, stamp.len)
            }
            Err(_) => return Ok(None),
        }
    } else {
        match parse_bsd_stamp(rest) {
            Some(stamp) => {
                let instant = resolve_bsd(&stamp, parser.year, &parser.tz, received_at)
                    .ok_or_else(|| ParseError::syntax("timestamp names no real date", at))?;
                (instant, stamp.len)
            }
            None => return Ok(None),
        }
    };
    let mut end = at + len;
    if bytes.get(end) == Some(&b':') {
        end += 1;
    }
    match bytes.get(end) {
        None => Ok(Some((Some(instant), end))),
        Some(b' ') => Ok(Some((Some(instant), end + 1))),
        Some(_) => Ok(None),
    }
}

impl Parser for Rfc3164Parser {
    fn parse(&self, frame: Bytes, cx: &ParseContext) -> Result<Event, ParseError> {
        let bytes: &[u8] = &frame;
        let mut event = Event::empty(cx.received_at);
        let mut at = 0;
        if bytes.first() == Some(&b'<') {
            let (pri, used) = parse_pri(bytes, false)?;
            set_pri(&mut event, pri);
            at = skip_spaces(bytes, used);
        }
        let host = match timestamp(self, bytes, at, cx.received_at)? {
            Some((instant, next)) => {
                event.timestamp = instant;
                at = next;
                HostRule::Detect
            }
            None => HostRule::None,
        };
        parse_body(&frame, Body { at, host }, &mut event);
        if event.hostname.is_none() {
            event.hostname = cx.peer.clone();
        }
        if self.trusted_properties {
            trusted::extract(&mut event);
        }
        Ok(event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(input: &str) -> Event {
        let parser = Rfc3164Parser {
            year: Some(2024),
            ..Rfc3164Parser::default()
        };
        parser
            .parse(Bytes::from(input.to_owned()), &ParseContext::now())
            .unwrap()
    }

    fn parts(event: &Event) -> [Option<&str>; 4] {
        [
            event.hostname.as_deref(),
            event.app_name.as_deref(),
            event.procid.as_deref(),
            event.message.as_deref(),
        ]
    }

    #[test]
    fn common_shapes() {
        let event = parse("<34>Oct 11 22:14:15 mymachine su: 'su root' failed");
        assert_eq!(event.facility.code(), 4);
        assert_eq!(event.severity.code(), 2);
        assert_eq!(event.timestamp.unwrap().to_string(), "2024-10-11T22:14:15Z");
        assert_eq!(
            parts(&event),
            [
                Some("mymachine"),
                Some("su"),
                None,
                Some("'su root' failed")
            ]
        );
        let event = parse("<13>Feb  5 17:32:18 10.0.0.99 Use the BFG!");
        assert_eq!(
            parts(&event),
            [Some("10.0.0.99"), None, None, Some("Use the BFG!")]
        );
        let event = parse("Jun 14 15:16:01 combo sshd(pam_unix)[19939]: authentication failure");
        assert_eq!((event.facility.code(), event.severity.code()), (1, 5));
        assert_eq!(
            parts(&event),
            [
                Some("combo"),
                Some("sshd(pam_unix)"),
                Some("19939"),
                Some("authentication failure")
            ]
        );
        let event = parse("<133>Jan 13 16:33:35 haproxy[73411]: Proxy started.");
        assert_eq!(
            parts(&event),
            [None, Some("haproxy"), Some("73411"), Some("Proxy started.")]
        );
        let event = parse("<13>Feb 13 20:07:26 74794bfb6795 root[8539]:syslog message");
        assert_eq!(event.message.as_deref(), Some("syslog message"));
        let event = parse("<167>Mar  6 16:57:54 172.20.245.8 %PIX-7-710005: UDP request");
        assert_eq!(event.app_name.as_deref(), Some("%PIX-7-710005"));
        let event = parse("<13>Jan  1 00:00:00 ::FFFF:129.144.52.38 postfix/smtpd[1713]: x");
        assert_eq!(
            parts(&event),
            [
                Some("::FFFF:129.144.52.38"),
                Some("postfix/smtpd"),
                Some("1713"),
                Some("x")
            ]
        );
    }

    #[test]
    fn odd_headers() {
        let event = parse("<167>Mar 7 2008 19:06:53: example tag: testmessage");
        assert_eq!(event.timestamp.unwrap().to_string(), "2008-03-07T19:06:53Z");
        assert_eq!(
            parts(&event),
            [Some("example"), Some("tag"), None, Some("testmessage")]
        );
        let event = parse("<38> Mar  7 19:06:53 example tag: x");
        assert_eq!(event.hostname.as_deref(), Some("example"));
        let event = parse("<14>2010-08-30T23:00:05Z X4711 app: m");
        assert_eq!(event.timestamp.unwrap().to_string(), "2010-08-30T23:00:05Z");
        let event = parse("<27>xapi: [error|xen3] Connection died");
        assert_eq!(
            parts(&event),
            [
                None,
                Some("xapi"),
                None,
                Some("[error|xen3] Connection died")
            ]
        );
        let event = parse("complete and utter gobbledegook");
        assert_eq!(event.timestamp, None);
        assert_eq!(event.message_str(), "complete and utter gobbledegook");
        let event = parse("<14>Aug 30 23:00:05 X4711");
        assert_eq!(parts(&event), [Some("X4711"), None, None, None]);
        let event = parse("<34>Oct 11 22:14:15 : a message");
        assert_eq!(parts(&event), [None, None, None, Some("a message")]);
        let event = parse("Jun 19 04:09:11 combo syslogd 1.4.1: restart.");
        assert_eq!(
            parts(&event),
            [Some("combo"), Some("syslogd 1.4.1"), None, Some("restart.")]
        );
        let event = parse("Jul  3 17:10:11 mac BezelServices 255.10[94]: ASSERTION FAILED");
        assert_eq!(
            parts(&event),
            [
                Some("mac"),
                Some("BezelServices 255.10"),
                Some("94"),
                Some("ASSERTION FAILED")
            ]
        );
        let event = parse("Jul  7 08:06:15 combo  -- root[2421]: ROOT LOGIN ON tty2");
        assert_eq!(
            parts(&event),
            [
                Some("combo"),
                Some("-- root"),
                Some("2421"),
                Some("ROOT LOGIN ON tty2")
            ]
        );
        let event = parse("<165>Aug 24 05:34:00 CST 1987 mymachine myproc[10]: x");
        assert_eq!(event.app_name, None);
        let event = parse("<175>Oct 16 2009 23:47:31 hostname tag[1234] This is a message");
        assert_eq!(
            parts(&event),
            [
                Some("hostname"),
                Some("tag"),
                Some("1234"),
                Some("This is a message")
            ]
        );
    }

    #[test]
    fn bad_pri_and_impossible_dates_fail() {
        let parser = Rfc3164Parser::default();
        let cx = ParseContext::now();
        for bad in [
            "<192>Oct 11 22:14:15 h a: m",
            "<x>m",
            "<13",
            "<13>Feb 30 00:00:00 h m",
        ] {
            assert!(parser.parse(Bytes::from(bad), &cx).is_err(), "{bad}");
        }
    }
}
