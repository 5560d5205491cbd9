//! RFC 5424, read strictly.
//!
//! ```text
//! SYSLOG-MSG = PRI VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP MSGID SP SD [SP MSG]
//! ```
//!
//! What "strict" means here: PRI 0–191 without leading zeros; VERSION exactly `1`; an RFC 3339
//! TIMESTAMP (uppercase `T`/`Z`, a real date, no leap second, up to
//! [`max_fraction_digits`](Rfc5424Parser::max_fraction_digits) fraction digits) or `-`;
//! header fields of printable US-ASCII within their lengths (HOSTNAME 255, APP-NAME 48,
//! PROCID 128, MSGID 32), `-` meaning absent; STRUCTURED-DATA elements with SD-NAMEs of at
//! most 32 characters, `\"`, `\\` and `\]` escapes (any other backslash is kept as a
//! character, as section 6.3.3 says), an unescaped `]` or `"` in a value rejected, no
//! duplicate SD-ID; exactly one SP before MSG (a second one belongs to MSG); a BOM before MSG
//! stripped and noted with [`BOM_TAG`], the rest then required to be UTF-8.

use bytes::Bytes;

use super::time::parse_rfc3339;
use super::{parse_pri, set_pri, slice, trusted, FrameText, SyslogOptions, BOM_TAG};
use crate::event::{Event, SdElement, SdParam, StructuredData, Text};
use crate::parser::{ParseContext, ParseError, Parser};

/// The UTF-8 byte order mark.
pub(crate) const BOM: &[u8] = b"\xEF\xBB\xBF";

/// The RFC 5424 parser.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rfc5424Parser {
    /// The most fraction digits accepted in TIMESTAMP (the RFC says 6; default 9).
    pub max_fraction_digits: usize,
    /// Turn rsyslog's `@[_PID=…]` suffix of MSG into fields.
    pub trusted_properties: bool,
}

impl Default for Rfc5424Parser {
    fn default() -> Self {
        Rfc5424Parser::new(&SyslogOptions::default())
    }
}

impl Rfc5424Parser {
    /// A parser with these options.
    pub fn new(options: &SyslogOptions) -> Self {
        Rfc5424Parser {
            max_fraction_digits: usize::from(options.max_fraction_digits.clamp(1, 9)),
            trusted_properties: options.trusted_properties,
        }
    }
}

struct Scanner<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn rest(&self) -> &[u8] {
        self.bytes.get(self.at..).unwrap_or_default()
    }

    fn expect_sp(&mut self, after: &str) -> Result<(), ParseError> {
        if self.peek() == Some(b' ') {
            self.at += 1;
            Ok(())
        } else {
            Err(ParseError::syntax(
                format!("expected SP after {after}"),
                self.at,
            ))
        }
    }

    /// A header field: 1..=max printable US-ASCII characters, or `-` for absent.
    fn field(
        &mut self,
        frame: &FrameText<'_>,
        max: usize,
        name: &str,
    ) -> Result<Option<Text>, ParseError> {
        let start = self.at;
        while let Some(byte) = self.peek().filter(|b| (33..=126).contains(b)) {
            let _ = byte;
            self.at += 1;
        }
        let len = self.at - start;
        if len == 0 {
            return Err(ParseError::syntax(
                format!("expected {name} (1 to {max} printable US-ASCII characters) or `-`"),
                start,
            ));
        }
        if len > max {
            return Err(ParseError::syntax(
                format!("{name} is longer than {max} characters"),
                start,
            ));
        }
        if len == 1 && self.bytes.get(start) == Some(&b'-') {
            return Ok(None);
        }
        Ok(Some(frame.header(start, self.at)))
    }

    /// An SD-NAME: 1..=32 printable US-ASCII characters except `=`, SP, `]`, `"`.
    fn sd_name(&mut self, what: &str) -> Result<(usize, usize), ParseError> {
        let start = self.at;
        while self
            .peek()
            .is_some_and(|b| (33..=126).contains(&b) && !matches!(b, b'=' | b']' | b'"'))
        {
            self.at += 1;
        }
        match self.at - start {
            0 => Err(ParseError::syntax(format!("expected {what}"), start)),
            1..=32 => Ok((start, self.at)),
            _ => Err(ParseError::syntax(
                format!("{what} is longer than 32 characters"),
                start,
            )),
        }
    }

    /// A PARAM-VALUE after its opening `"`, up to and including the closing `"`.
    fn sd_value(&mut self, frame: &FrameText<'_>) -> Result<Text, ParseError> {
        let start = self.at;
        let mut unescaped: Option<Vec<u8>> = None;
        let mut copied_to = start;
        loop {
            match self.peek() {
                None => {
                    return Err(ParseError::syntax(
                        "unterminated PARAM-VALUE (expected `\"`)",
                        self.at,
                    ))
                }
                Some(b'"') => break,
                Some(b']') => {
                    return Err(ParseError::syntax(
                        "`]` must be escaped as `\\]` in PARAM-VALUE",
                        self.at,
                    ))
                }
                Some(b'\\') => {
                    let next = self.bytes.get(self.at + 1).copied();
                    if matches!(next, Some(b'"' | b'\\' | b']')) {
                        let buffer = unescaped.get_or_insert_with(Vec::new);
                        buffer.extend_from_slice(
                            self.bytes.get(copied_to..self.at).unwrap_or_default(),
                        );
                        self.at += 1; // drop the backslash, keep the escaped character
                        copied_to = self.at;
                    }
                    self.at += 1;
                }
                Some(_) => self.at += 1,
            }
        }
        let end = self.at;
        self.at += 1; // the closing quote
        let value = match unescaped {
            None => frame.text(start, end),
            Some(mut buffer) => {
                buffer.extend_from_slice(self.bytes.get(copied_to..end).unwrap_or_default());
                String::from_utf8(buffer).ok().map(Text::from)
            }
        };
        value.ok_or_else(|| ParseError::syntax("PARAM-VALUE is not UTF-8", start))
    }

    fn structured_data(&mut self, frame: &FrameText<'_>) -> Result<StructuredData, ParseError> {
        let mut data = StructuredData::default();
        if self.peek() == Some(b'-') {
            self.at += 1;
            return Ok(data);
        }
        if self.peek() != Some(b'[') {
            return Err(ParseError::syntax(
                "expected STRUCTURED-DATA (`[` or `-`)",
                self.at,
            ));
        }
        data.elements.reserve(2);
        while self.peek() == Some(b'[') {
            self.at += 1;
            let (start, end) = self.sd_name("SD-ID")?;
            let id = frame.header(start, end);
            if data.elements.iter().any(|e| e.id == id) {
                return Err(ParseError::syntax("duplicate SD-ID", start));
            }
            let mut element = SdElement {
                id,
                params: Vec::with_capacity(4),
            };
            loop {
                match self.peek() {
                    Some(b']') => {
                        self.at += 1;
                        break;
                    }
                    Some(b' ') => {
                        self.at += 1;
                        let (start, end) = self.sd_name("PARAM-NAME")?;
                        if self.rest().get(..2) != Some(&b"=\""[..]) {
                            return Err(ParseError::syntax(
                                "expected `=\"` after PARAM-NAME",
                                self.at,
                            ));
                        }
                        self.at += 2;
                        let value = self.sd_value(frame)?;
                        element.params.push(SdParam {
                            name: frame.header(start, end),
                            value,
                        });
                    }
                    _ => {
                        return Err(ParseError::syntax(
                            "expected SP or `]` in SD-ELEMENT",
                            self.at,
                        ))
                    }
                }
            }
            data.elements.push(element);
        }
        Ok(data)
    }
}

impl Parser for Rfc5424Parser {
    fn parse(&self, frame: Bytes, cx: &ParseContext) -> Result<Event, ParseError> {
        let bytes: &[u8] = &frame;
        let (pri, at) = parse_pri(bytes, true)?;
        let mut event = Event::empty(cx.received_at);
        set_pri(&mut event, pri);
        let mut scan = Scanner { bytes, at };
        let text = FrameText::new(&frame);

        if scan.peek() != Some(b'1') {
            return Err(ParseError::syntax("expected VERSION 1", scan.at));
        }
        scan.at += 1;
        if scan.peek().is_some_and(|b| b.is_ascii_digit()) {
            return Err(ParseError::syntax(
                "unsupported VERSION (only 1 is defined)",
                scan.at - 1,
            ));
        }
        scan.expect_sp("VERSION")?;

        if scan.peek() == Some(b'-') {
            scan.at += 1;
        } else {
            let stamp =
                parse_rfc3339(scan.rest(), self.max_fraction_digits, false).map_err(|error| {
                    ParseError::syntax(
                        format!(
                            "expected an RFC 3339 TIMESTAMP (up to {} fraction digits) or `-`",
                            self.max_fraction_digits
                        ),
                        scan.at + error.at,
                    )
                })?;
            event.timestamp = stamp.instant;
            scan.at += stamp.len;
        }
        scan.expect_sp("TIMESTAMP")?;
        event.hostname = scan.field(&text, 255, "HOSTNAME")?;
        scan.expect_sp("HOSTNAME")?;
        event.app_name = scan.field(&text, 48, "APP-NAME")?;
        scan.expect_sp("APP-NAME")?;
        event.procid = scan.field(&text, 128, "PROCID")?;
        scan.expect_sp("PROCID")?;
        event.msgid = scan.field(&text, 32, "MSGID")?;
        scan.expect_sp("MSGID")?;
        event.structured_data = scan.structured_data(&text)?;

        match scan.peek() {
            None => {}
            Some(b' ') => {
                scan.at += 1;
                let mut start = scan.at;
                if scan.rest().starts_with(BOM) {
                    start += BOM.len();
                    event.add_tag(BOM_TAG);
                    if std::str::from_utf8(slice(&frame, start, frame.len()).as_ref()).is_err() {
                        return Err(ParseError::syntax(
                            "MSG after a BOM is not valid UTF-8",
                            start,
                        ));
                    }
                }
                event.message = text.message(start, &mut event);
            }
            Some(_) => {
                return Err(ParseError::syntax(
                    "expected SP before MSG or the end of the message",
                    scan.at,
                ))
            }
        }
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

    fn parse(input: &str) -> Result<Event, ParseError> {
        Rfc5424Parser::default().parse(Bytes::from(input.to_owned()), &ParseContext::now())
    }

    #[test]
    fn rfc_example_with_structured_data_and_bom() {
        let event = parse(
            "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 \
             [exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"]\
             [examplePriority@32473 class=\"high\"] \u{feff}An application event log entry...",
        )
        .unwrap();
        assert_eq!(event.facility.code(), 20);
        assert_eq!(event.severity.code(), 5);
        assert_eq!(
            event.timestamp.unwrap().to_string(),
            "2003-10-11T22:14:15.003Z"
        );
        assert_eq!(event.hostname.as_deref(), Some("mymachine.example.com"));
        assert_eq!(event.procid, None);
        assert_eq!(event.msgid.as_deref(), Some("ID47"));
        let sd = event.structured_data.get("exampleSDID@32473").unwrap();
        assert_eq!(sd.values("eventID").next().map(|v| &**v), Some("1011"));
        assert!(event.structured_data.get("examplePriority@32473").is_some());
        assert_eq!(event.message_str(), "An application event log entry...");
        assert!(event.has_tag(BOM_TAG));
    }

    #[test]
    fn escapes_are_unescaped_and_other_backslashes_kept() {
        let event = parse(r#"<1>1 - - - - - [a x="\]\"\\" y="\n" z="plain"]"#).unwrap();
        let element = event.structured_data.get("a").unwrap();
        let value = |name| element.values(name).next().map(|v| v.to_string());
        assert_eq!(value("x").as_deref(), Some("]\"\\"));
        assert_eq!(value("y").as_deref(), Some("\\n"));
        assert_eq!(value("z").as_deref(), Some("plain"));
        assert_eq!(event.message, None);
    }

    #[test]
    fn strictness() {
        for bad in [
            "",
            "<1>2 - - - - - -",
            "<1>10 - - - - - -",
            "<1>1 - - - - -",
            "<1>1 -  - - - -",
            "<1>1 - - - - - [a b=\"]\"]",
            "<1>1 - - - - - [a b=\"x\"",
            "<1>1 - - - - - [a][a]",
            "<1>1 - - - - - [a b]",
            "<1>1 - - - - - []",
            "<1>1 - - - - - -x",
            "<1>1 2003-08-24T05:14:15.1234567890Z - - - - -",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should be rejected");
        }
        let long = "x".repeat(49);
        assert!(parse(&format!("<1>1 - - {long} - - -")).is_err());
        assert!(parse(&format!("<1>1 - - {} - - -", &long[1..])).is_ok());
        let event = parse("<1>1 - - - - - - \u{feff}").unwrap();
        assert_eq!(event.message, None);
        let bad_after_bom = Rfc5424Parser::default().parse(
            Bytes::from_static(b"<1>1 - - - - - - \xEF\xBB\xBF\xC1"),
            &ParseContext::now(),
        );
        assert!(bad_after_bom.is_err());
    }

    #[test]
    fn latin1_message_is_kept_lossily_and_flagged() {
        let frame = Bytes::from_static(b"<1>1 - - - - - - caf\xe9");
        let event = Rfc5424Parser::default()
            .parse(frame.clone(), &ParseContext::now())
            .unwrap();
        assert_eq!(event.message_str(), "caf\u{fffd}");
        assert!(event.has_tag(crate::parser::INVALID_UTF8_TAG));
        assert_eq!(event.raw, Some(frame));
    }

    #[test]
    fn one_space_before_msg_and_fraction_limit() {
        assert_eq!(
            parse("<1>1 - - - - - -  two").unwrap().message_str(),
            " two"
        );
        let six = Rfc5424Parser {
            max_fraction_digits: 6,
            ..Rfc5424Parser::default()
        };
        let cx = ParseContext::now();
        let frame = Bytes::from_static(b"<1>1 2003-08-24T05:14:15.1234567Z - - - - -");
        assert!(six.parse(frame.clone(), &cx).is_err());
        assert!(Rfc5424Parser::default().parse(frame, &cx).is_ok());
    }
}
