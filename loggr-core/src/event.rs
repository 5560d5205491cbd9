//! The [`Event`]: one log message, as every stage of loggr sees it.
//!
//! One model serves both ancestors: pyloggr's syslog events (header fields, structured data,
//! custom fields, tags) and BuzzSaw's events (program, pid, tags, `extra_info`, a digest).
//!
//! Text fields are [`Text`] (a UTF-8 string backed by [`bytes::Bytes`]), so a parser can hand
//! out slices of the received frame without copying, and clones are cheap reference-count bumps.
//!
//! # The canonical JSON form
//!
//! `Event`'s serde form is loggr's wire and file format (JSON-lines files, AMQP messages, the
//! `json` parser). One object per event:
//!
//! ```json
//! {
//!   "id": "9f2c…(64 hex digits)",
//!   "received_at": "2026-11-21T10:00:00.123456Z",
//!   "timestamp": "2026-11-21T09:59:59.5Z",
//!   "facility": 4,
//!   "severity": 6,
//!   "hostname": "web1",
//!   "app_name": "sshd",
//!   "procid": "812",
//!   "msgid": null,
//!   "structured_data": {"origin@32473": {"ip": ["10.0.0.1", "10.0.0.2"], "software": "x"}},
//!   "message": "Accepted publickey for alice from 10.0.0.9",
//!   "tags": ["auth", "ssh"],
//!   "fields": {"userid": "alice", "bytes": 42},
//!   "raw": "<38>1 …"
//! }
//! ```
//!
//! - `id` is the [content id](Event::content_id), written for consumers; it is recomputed, never
//!   trusted, when an event is read back.
//! - `received_at` and `timestamp` are RFC 3339 in UTC; `timestamp` (what the sender reported)
//!   may be `null`. On input any RFC 3339 offset is accepted, and a missing `received_at`
//!   means "now".
//! - `facility` (0–23) and `severity` (0–7) are written as numbers and read as numbers or as
//!   their syslog names (`"auth"`, `"local3"`, `"warning"`, `"warn"`, `"err"`, …). Missing, they
//!   default to `user` and `notice`, as RFC 3164 says for a message without PRI.
//! - `structured_data` maps SD-ID → param → value; a param given several times is an array.
//! - `fields` values are strings, integers, floats, booleans or arrays of them.
//! - `raw` is the received bytes as a string when they are UTF-8; otherwise it is written as
//!   `"raw_base64"`. Both keys, like every key but `message`, may be left out on input.
//! - Keys that are not part of the model are kept on input: they become `fields`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use bytes::Bytes;
use jiff::Timestamp;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// An immutable UTF-8 string backed by [`Bytes`]: slicing a received frame costs no copy.
pub type Text = bytestring::ByteString;

/// The set of tags attached to an event (kept sorted).
pub type Tags = BTreeSet<Text>;

pub use crate::fields::Fields;

/// A field value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// Text.
    String(Text),
    /// A signed integer (for example a grok `:int` capture).
    Int(i64),
    /// A floating-point number (for example a grok `:float` capture).
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// Several values under one name.
    List(Vec<Value>),
}

impl Value {
    /// The value as text, when it is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(text) => Some(text),
            _ => None,
        }
    }

    /// Appends `more` to this value, turning it into a list when it was a single value.
    pub fn push(&mut self, more: Value) {
        match self {
            Value::List(items) => items.push(more),
            single => {
                let first = std::mem::replace(single, Value::List(Vec::with_capacity(2)));
                if let Value::List(items) = single {
                    items.push(first);
                    items.push(more);
                }
            }
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::String(text) => f.write_str(text),
            Value::Int(number) => write!(f, "{number}"),
            Value::Float(number) => write!(f, "{number}"),
            Value::Bool(flag) => write!(f, "{flag}"),
            Value::List(items) => {
                for (index, item) in items.iter().enumerate() {
                    if index > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{item}")?;
                }
                Ok(())
            }
        }
    }
}

impl From<&'static str> for Value {
    fn from(text: &'static str) -> Self {
        Value::String(Text::from_static(text))
    }
}

impl From<String> for Value {
    fn from(text: String) -> Self {
        Value::String(Text::from(text))
    }
}

impl From<Text> for Value {
    fn from(text: Text) -> Self {
        Value::String(text)
    }
}

impl From<i64> for Value {
    fn from(number: i64) -> Self {
        Value::Int(number)
    }
}

impl From<f64> for Value {
    fn from(number: f64) -> Self {
        Value::Float(number)
    }
}

impl From<bool> for Value {
    fn from(flag: bool) -> Self {
        Value::Bool(flag)
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::String(text) => serializer.serialize_str(text),
            Value::Int(number) => serializer.serialize_i64(*number),
            Value::Float(number) => serializer.serialize_f64(*number),
            Value::Bool(flag) => serializer.serialize_bool(*flag),
            Value::List(items) => items.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ValueVisitor;
        impl<'de> Visitor<'de> for ValueVisitor {
            type Value = Value;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, number, boolean or array of them")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Value, E> {
                Ok(Value::String(Text::from(text)))
            }
            fn visit_string<E: de::Error>(self, text: String) -> Result<Value, E> {
                Ok(Value::String(Text::from(text)))
            }
            fn visit_i64<E: de::Error>(self, number: i64) -> Result<Value, E> {
                Ok(Value::Int(number))
            }
            fn visit_u64<E: de::Error>(self, number: u64) -> Result<Value, E> {
                Ok(i64::try_from(number).map_or(Value::Float(number as f64), Value::Int))
            }
            fn visit_f64<E: de::Error>(self, number: f64) -> Result<Value, E> {
                Ok(Value::Float(number))
            }
            fn visit_bool<E: de::Error>(self, flag: bool) -> Result<Value, E> {
                Ok(Value::Bool(flag))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Value::List(items))
            }
        }
        deserializer.deserialize_any(ValueVisitor)
    }
}

macro_rules! named_code {
    (
        $(#[$meta:meta])* $name:ident, $max:literal, $what:literal,
        [$($variant:ident = $code:literal => $label:literal $(| $alias:literal)*),* $(,)?]
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[repr(u8)]
        pub enum $name {
            $(
                #[doc = concat!("`", $label, "` (", stringify!($code), ")")]
                $variant = $code,
            )*
        }

        impl $name {
            /// The numeric code.
            pub const fn code(self) -> u8 {
                self as u8
            }

            /// The value for a numeric code, if it is in range.
            pub const fn from_code(code: u8) -> Option<Self> {
                match code {
                    $($code => Some(Self::$variant),)*
                    _ => None,
                }
            }

            /// The syslog name (as rsyslog prints it).
            pub const fn name(self) -> &'static str {
                match self {
                    $(Self::$variant => $label,)*
                }
            }

            /// Looks a value up by name (case-insensitive; common aliases accepted) or by its
            /// number written in decimal.
            pub fn from_name(name: &str) -> Option<Self> {
                if let Ok(code) = name.parse::<u8>() {
                    return Self::from_code(code);
                }
                let lower = name.to_ascii_lowercase();
                match lower.as_str() {
                    $($label $(| $alias)* => Some(Self::$variant),)*
                    _ => None,
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_u8(self.code())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct CodeVisitor;
                impl Visitor<'_> for CodeVisitor {
                    type Value = $name;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        write!(f, "a {} number 0-{} or name", $what, $max)
                    }
                    fn visit_u64<E: de::Error>(self, code: u64) -> Result<$name, E> {
                        u8::try_from(code).ok().and_then($name::from_code).ok_or_else(|| {
                            E::custom(format_args!("{} {code} is out of range 0-{}", $what, $max))
                        })
                    }
                    fn visit_i64<E: de::Error>(self, code: i64) -> Result<$name, E> {
                        u8::try_from(code).ok().and_then($name::from_code).ok_or_else(|| {
                            E::custom(format_args!("{} {code} is out of range 0-{}", $what, $max))
                        })
                    }
                    fn visit_str<E: de::Error>(self, name: &str) -> Result<$name, E> {
                        $name::from_name(name).ok_or_else(|| {
                            E::custom(format_args!("unknown {} `{name}`", $what))
                        })
                    }
                }
                deserializer.deserialize_any(CodeVisitor)
            }
        }
    };
}

named_code!(
    /// The syslog facility (RFC 5424 section 6.2.1).
    Facility, 23, "facility",
    [
        Kern = 0 => "kern" | "kernel",
        User = 1 => "user",
        Mail = 2 => "mail",
        Daemon = 3 => "daemon",
        Auth = 4 => "auth" | "security",
        Syslog = 5 => "syslog",
        Lpr = 6 => "lpr",
        News = 7 => "news",
        Uucp = 8 => "uucp",
        Cron = 9 => "cron",
        Authpriv = 10 => "authpriv",
        Ftp = 11 => "ftp",
        Ntp = 12 => "ntp",
        Audit = 13 => "audit" | "security2",
        Alert = 14 => "alert",
        Clock = 15 => "clock" | "cron2",
        Local0 = 16 => "local0",
        Local1 = 17 => "local1",
        Local2 = 18 => "local2",
        Local3 = 19 => "local3",
        Local4 = 20 => "local4",
        Local5 = 21 => "local5",
        Local6 = 22 => "local6",
        Local7 = 23 => "local7",
    ]
);

named_code!(
    /// The syslog severity (RFC 5424 section 6.2.1); lower is more severe.
    Severity, 7, "severity",
    [
        Emergency = 0 => "emerg" | "emergency" | "panic",
        Alert = 1 => "alert",
        Critical = 2 => "crit" | "critical",
        Error = 3 => "err" | "error",
        Warning = 4 => "warning" | "warn",
        Notice = 5 => "notice",
        Informational = 6 => "info" | "informational",
        Debug = 7 => "debug",
    ]
);

/// One structured-data parameter (`name="value"`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SdParam {
    /// PARAM-NAME.
    pub name: Text,
    /// PARAM-VALUE, unescaped.
    pub value: Text,
}

/// One structured-data element (`[id name="value" …]`).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct SdElement {
    /// SD-ID.
    pub id: Text,
    /// Parameters in the order received; a name may repeat (several values).
    pub params: Vec<SdParam>,
}

impl SdElement {
    /// The values of one parameter, in order.
    pub fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Text> + 'a {
        self.params
            .iter()
            .filter(move |p| &*p.name == name)
            .map(|p| &p.value)
    }
}

/// RFC 5424 structured data: SD-ID → params; a param may hold several values.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct StructuredData {
    /// The elements, in the order received.
    pub elements: Vec<SdElement>,
}

impl StructuredData {
    /// Whether there is no element.
    pub fn is_empty(&self) -> bool {
        self.elements.is_empty()
    }

    /// The element with this SD-ID.
    pub fn get(&self, id: &str) -> Option<&SdElement> {
        self.elements.iter().find(|e| &*e.id == id)
    }

    /// Adds one parameter value, creating the element if needed.
    pub fn push(&mut self, id: impl Into<Text>, name: impl Into<Text>, value: impl Into<Text>) {
        let id = id.into();
        let param = SdParam {
            name: name.into(),
            value: value.into(),
        };
        match self.elements.iter_mut().find(|e| e.id == id) {
            Some(element) => element.params.push(param),
            None => self.elements.push(SdElement {
                id,
                params: vec![param],
            }),
        }
    }

    /// Merges another set in: elements with the same SD-ID get the other's params that they
    /// do not already hold.
    pub fn union(&mut self, other: &StructuredData) {
        for element in &other.elements {
            match self.elements.iter_mut().find(|e| e.id == element.id) {
                Some(mine) => {
                    for param in &element.params {
                        if !mine.params.contains(param) {
                            mine.params.push(param.clone());
                        }
                    }
                }
                None => self.elements.push(element.clone()),
            }
        }
    }
}

impl Serialize for StructuredData {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        struct Params<'a>(&'a SdElement);
        impl Serialize for Params<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let params = &self.0.params;
                let mut map = serializer.serialize_map(None)?;
                for (index, param) in params.iter().enumerate() {
                    if params[..index].iter().any(|p| p.name == param.name) {
                        continue; // already written with its siblings
                    }
                    let count = params[index..]
                        .iter()
                        .filter(|p| p.name == param.name)
                        .count();
                    if count == 1 {
                        map.serialize_entry(&*param.name, &*param.value)?;
                    } else {
                        let values: Vec<&str> = self.0.values(&param.name).map(|v| &**v).collect();
                        map.serialize_entry(&*param.name, &values)?;
                    }
                }
                map.end()
            }
        }
        let mut map = serializer.serialize_map(Some(self.elements.len()))?;
        for element in &self.elements {
            map.serialize_entry(&*element.id, &Params(element))?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for StructuredData {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum OneOrMany {
            One(String),
            Many(Vec<String>),
        }
        struct ParamsVisitor;
        impl<'de> Visitor<'de> for ParamsVisitor {
            type Value = Vec<SdParam>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of param name to string or array of strings")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut params = Vec::new();
                while let Some((name, values)) = map.next_entry::<String, OneOrMany>()? {
                    let name = Text::from(name);
                    match values {
                        OneOrMany::One(value) => {
                            params.push(SdParam {
                                name,
                                value: value.into(),
                            });
                        }
                        OneOrMany::Many(values) => {
                            params.extend(values.into_iter().map(|value| SdParam {
                                name: name.clone(),
                                value: value.into(),
                            }))
                        }
                    }
                }
                Ok(params)
            }
        }
        struct Params(Vec<SdParam>);
        impl<'de> Deserialize<'de> for Params {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                deserializer.deserialize_map(ParamsVisitor).map(Params)
            }
        }
        struct SdVisitor;
        impl<'de> Visitor<'de> for SdVisitor {
            type Value = StructuredData;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of SD-ID to params, or null")
            }
            fn visit_unit<E: de::Error>(self) -> Result<StructuredData, E> {
                Ok(StructuredData::default())
            }
            fn visit_none<E: de::Error>(self) -> Result<StructuredData, E> {
                Ok(StructuredData::default())
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<StructuredData, A::Error> {
                let mut elements = Vec::new();
                while let Some((id, Params(params))) = map.next_entry::<String, Params>()? {
                    elements.push(SdElement {
                        id: id.into(),
                        params,
                    });
                }
                Ok(StructuredData { elements })
            }
        }
        deserializer.deserialize_any(SdVisitor)
    }
}

/// The stable content id of an event: SHA-256 over what the sender sent — severity,
/// facility, app_name, hostname, procid, msgid, message, structured data and reported
/// timestamp — and nothing a parser or filter derived (fields, tags) or the receiver added
/// (`received_at`).
///
/// Two receptions of the same message (a RELP resend, an AMQP redelivery, a file read twice)
/// have the same id, which is what makes storage idempotent. Two messages that differ in any
/// of those parts, even only in their process id, have different ids and are both stored.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContentId(pub [u8; 32]);

impl ContentId {
    /// The id as 64 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        String::from_utf8_lossy(&self.hex_bytes()).into_owned()
    }

    /// The id as 64 lowercase hex digits, without allocating.
    pub fn hex_bytes(&self) -> [u8; 64] {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; 64];
        for (pair, byte) in out.chunks_exact_mut(2).zip(self.0) {
            pair[0] = DIGITS[usize::from(byte >> 4)];
            pair[1] = DIGITS[usize::from(byte & 0x0f)];
        }
        out
    }
}

impl fmt::Display for ContentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for ContentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ContentId({})", self.to_hex())
    }
}

/// One log message.
///
/// `Event` is plain data: it carries no acknowledgement state (see
/// [`Envelope`](crate::Envelope) for what moves between stages).
///
/// ```
/// use loggr_core::{Event, Severity};
///
/// let mut event = Event::new("disk full");
/// event.severity = Severity::Critical;
/// event.add_tag("storage");
/// event.set_field("mount", "/var");
/// let json = serde_json::to_string(&event).unwrap();
/// let back: Event = serde_json::from_str(&json).unwrap();
/// assert_eq!(back, event);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// When loggr received the message.
    pub received_at: Timestamp,
    /// When the sender says the message was emitted, if it said.
    pub timestamp: Option<Timestamp>,
    /// Syslog facility.
    pub facility: Facility,
    /// Syslog severity.
    pub severity: Severity,
    /// The host the message comes from.
    pub hostname: Option<Text>,
    /// The application (RFC 3164 TAG, BuzzSaw's `program`).
    pub app_name: Option<Text>,
    /// The process id (BuzzSaw's `pid`).
    pub procid: Option<Text>,
    /// RFC 5424 MSGID.
    pub msgid: Option<Text>,
    /// RFC 5424 structured data.
    pub structured_data: StructuredData,
    /// The free-form message.
    pub message: Option<Text>,
    /// Tags attached by filters.
    pub tags: Tags,
    /// Named values attached by parsers and filters.
    pub fields: Fields,
    /// The bytes as received, when the source keeps them.
    pub raw: Option<Bytes>,
}

impl Event {
    /// A `user.notice` event with this message, received now.
    pub fn new(message: impl Into<Text>) -> Self {
        Event {
            message: Some(message.into()),
            ..Event::empty(Timestamp::now())
        }
    }

    /// An event with no message and every optional part empty.
    pub fn empty(received_at: Timestamp) -> Self {
        Event {
            received_at,
            timestamp: None,
            facility: Facility::User,
            severity: Severity::Notice,
            hostname: None,
            app_name: None,
            procid: None,
            msgid: None,
            structured_data: StructuredData::default(),
            message: None,
            tags: Tags::new(),
            fields: Fields::new(),
            raw: None,
        }
    }

    /// The message, or `""`.
    pub fn message_str(&self) -> &str {
        self.message.as_deref().unwrap_or("")
    }

    /// Adds a tag.
    pub fn add_tag(&mut self, tag: impl Into<Text>) {
        self.tags.insert(tag.into());
    }

    /// Whether the event has this tag.
    pub fn has_tag(&self, tag: &str) -> bool {
        self.tags.contains(tag)
    }

    /// Sets a field, replacing any earlier value.
    pub fn set_field(&mut self, name: impl Into<Text>, value: impl Into<Value>) {
        self.fields.insert(name.into(), value.into());
    }

    /// A field's value.
    pub fn field(&self, name: &str) -> Option<&Value> {
        self.fields.get(name)
    }

    /// The stable content id (see [`ContentId`]).
    pub fn content_id(&self) -> ContentId {
        fn part(hasher: &mut Sha256, text: Option<&str>) {
            match text {
                Some(text) => {
                    hasher.update((text.len() as u64).to_le_bytes());
                    hasher.update(text.as_bytes());
                }
                None => hasher.update(u64::MAX.to_le_bytes()),
            }
        }
        let mut hasher = Sha256::new();
        hasher.update([self.severity.code(), self.facility.code()]);
        part(&mut hasher, self.app_name.as_deref());
        part(&mut hasher, self.hostname.as_deref());
        part(&mut hasher, self.procid.as_deref());
        part(&mut hasher, self.msgid.as_deref());
        part(&mut hasher, self.message.as_deref());
        hasher.update((self.structured_data.elements.len() as u64).to_le_bytes());
        for element in &self.structured_data.elements {
            part(&mut hasher, Some(&element.id));
            hasher.update((element.params.len() as u64).to_le_bytes());
            for param in &element.params {
                part(&mut hasher, Some(&param.name));
                part(&mut hasher, Some(&param.value));
            }
        }
        match self.timestamp {
            Some(at) => {
                hasher.update([1]);
                hasher.update(at.as_nanosecond().to_le_bytes());
            }
            None => hasher.update([0]),
        }
        ContentId(hasher.finalize().into())
    }

    /// A cheap estimate of the event's size in bytes, used for batch limits: text lengths plus
    /// a flat allowance per structured-data element, tag and field (constant time in their
    /// number, since it runs for every event in the sink runner).
    pub fn estimated_size(&self) -> usize {
        let text = |t: &Option<Text>| t.as_ref().map_or(0, |t| t.len());
        128 + text(&self.hostname)
            + text(&self.app_name)
            + text(&self.procid)
            + text(&self.msgid)
            + text(&self.message)
            + self.raw.as_ref().map_or(0, Bytes::len)
            + 64 * (self.structured_data.elements.len() + self.tags.len() + self.fields.len())
    }
}

impl Serialize for Event {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        let id = self.content_id().hex_bytes();
        map.serialize_entry("id", std::str::from_utf8(&id).unwrap_or_default())?;
        map.serialize_entry("received_at", &self.received_at)?;
        map.serialize_entry("timestamp", &self.timestamp)?;
        map.serialize_entry("facility", &self.facility)?;
        map.serialize_entry("severity", &self.severity)?;
        map.serialize_entry("hostname", &self.hostname.as_deref())?;
        map.serialize_entry("app_name", &self.app_name.as_deref())?;
        map.serialize_entry("procid", &self.procid.as_deref())?;
        map.serialize_entry("msgid", &self.msgid.as_deref())?;
        map.serialize_entry("structured_data", &self.structured_data)?;
        map.serialize_entry("message", &self.message.as_deref())?;
        map.serialize_entry("tags", &self.tags)?;
        map.serialize_entry("fields", &self.fields)?;
        if let Some(raw) = &self.raw {
            match std::str::from_utf8(raw) {
                Ok(text) => map.serialize_entry("raw", text)?,
                Err(_) => map.serialize_entry("raw_base64", &base64_encode(raw))?,
            }
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EventVisitor;
        impl<'de> Visitor<'de> for EventVisitor {
            type Value = Event;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a loggr event object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Event, A::Error> {
                let mut event = Event::empty(Timestamp::now());
                let text = |value: Option<String>| value.map(Text::from);
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "id" => {
                            map.next_value::<de::IgnoredAny>()?;
                        }
                        "received_at" => event.received_at = map.next_value()?,
                        "timestamp" => event.timestamp = map.next_value()?,
                        "facility" => event.facility = map.next_value()?,
                        "severity" => event.severity = map.next_value()?,
                        "hostname" => event.hostname = text(map.next_value()?),
                        "app_name" => event.app_name = text(map.next_value()?),
                        "procid" => event.procid = text(map.next_value()?),
                        "msgid" => event.msgid = text(map.next_value()?),
                        "structured_data" => event.structured_data = map.next_value()?,
                        "message" => event.message = text(map.next_value()?),
                        "tags" => {
                            let tags: Option<Vec<String>> = map.next_value()?;
                            event.tags = tags
                                .unwrap_or_default()
                                .into_iter()
                                .map(Text::from)
                                .collect();
                        }
                        "fields" => {
                            let fields: Option<BTreeMap<String, Value>> = map.next_value()?;
                            for (name, value) in fields.unwrap_or_default() {
                                event.fields.insert(name.into(), value);
                            }
                        }
                        "raw" => {
                            let raw: Option<String> = map.next_value()?;
                            event.raw = raw.map(Bytes::from);
                        }
                        "raw_base64" => {
                            let encoded: String = map.next_value()?;
                            let raw = base64_decode(&encoded).ok_or_else(|| {
                                de::Error::custom("raw_base64 is not valid base64")
                            })?;
                            event.raw = Some(Bytes::from(raw));
                        }
                        _ => {
                            let value: Value = map.next_value()?;
                            event.fields.insert(key.into(), value);
                        }
                    }
                }
                Ok(event)
            }
        }
        deserializer.deserialize_map(EventVisitor)
    }
}

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

pub(crate) fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(BASE64[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_end_matches('=');
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for byte in text.bytes() {
        let value = BASE64.iter().position(|&c| c == byte)? as u32;
        acc = (acc << 6) | value;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Event {
        let mut event = Event::new("Accepted publickey for alice from 10.0.0.9");
        event.timestamp = Some("2026-11-21T09:59:59.5Z".parse().unwrap());
        event.facility = Facility::Auth;
        event.severity = Severity::Informational;
        event.hostname = Some("web1".into());
        event.app_name = Some("sshd".into());
        event.procid = Some("812".into());
        event.structured_data.push("origin@32473", "ip", "10.0.0.1");
        event.structured_data.push("origin@32473", "ip", "10.0.0.2");
        event.structured_data.push("origin@32473", "software", "x");
        event.add_tag("ssh");
        event.set_field("userid", "alice");
        event.set_field("bytes", 42i64);
        event
    }

    #[test]
    fn json_round_trip_keeps_everything() {
        let mut event = sample();
        event.raw = Some(Bytes::from_static(b"<38>1 raw"));
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["facility"], 4);
        assert_eq!(json["severity"], 6);
        assert_eq!(json["structured_data"]["origin@32473"]["ip"][1], "10.0.0.2");
        assert_eq!(json["structured_data"]["origin@32473"]["software"], "x");
        assert_eq!(json["id"], event.content_id().to_hex());
        let back: Event = serde_json::from_value(json).unwrap();
        assert_eq!(back, event);
    }

    #[test]
    fn invalid_utf8_raw_round_trips_through_base64() {
        let mut event = sample();
        event.raw = Some(Bytes::from_static(b"caf\xe9 \x00\xff"));
        let json = serde_json::to_value(&event).unwrap();
        assert!(json.get("raw").is_none());
        assert!(json["raw_base64"].is_string());
        let back: Event = serde_json::from_value(json).unwrap();
        assert_eq!(back.raw, event.raw);
    }

    #[test]
    fn names_are_accepted_for_facility_and_severity_and_unknown_keys_become_fields() {
        let event: Event = serde_json::from_str(
            r#"{"facility":"local3","severity":"warn","message":"m","custom":"x"}"#,
        )
        .unwrap();
        assert_eq!(event.facility, Facility::Local3);
        assert_eq!(event.severity, Severity::Warning);
        assert_eq!(event.field("custom").and_then(Value::as_str), Some("x"));
        let error = serde_json::from_str::<Event>(r#"{"severity":9}"#).unwrap_err();
        assert!(
            error.to_string().contains("severity 9 is out of range"),
            "{error}"
        );
        let error = serde_json::from_str::<Event>(r#"{"facility":"bogus"}"#).unwrap_err();
        assert!(
            error.to_string().contains("unknown facility `bogus`"),
            "{error}"
        );
    }

    #[test]
    fn content_id_ignores_reception_and_annotations_but_not_content() {
        let event = sample();
        let mut again = event.clone();
        again.received_at = Timestamp::UNIX_EPOCH;
        again.add_tag("other");
        again.set_field("x", 1i64);
        assert_eq!(event.content_id(), again.content_id());
        let mut changed = event.clone();
        changed.message = Some("Accepted publickey for bob from 10.0.0.9".into());
        assert_ne!(event.content_id(), changed.content_id());
        let mut moved = event.clone();
        moved.hostname = Some("web2".into());
        assert_ne!(event.content_id(), moved.content_id());
        // Two processes logging the same line in the same second are two messages.
        let mut other_process = event.clone();
        other_process.procid = Some("99999".into());
        assert_ne!(event.content_id(), other_process.content_id());
        let mut other_msgid = event.clone();
        other_msgid.msgid = Some("ID47".into());
        assert_ne!(event.content_id(), other_msgid.content_id());
        let mut with_sd = event.clone();
        with_sd.structured_data.push("origin@1", "ip", "10.0.0.1");
        assert_ne!(event.content_id(), with_sd.content_id());
        let mut other_sd = event;
        other_sd.structured_data.push("origin@1", "ip", "10.0.0.2");
        assert_ne!(with_sd.content_id(), other_sd.content_id());
        // Field boundaries matter: "ab"+"c" differs from "a"+"bc".
        let mut left = Event::new("c");
        left.hostname = Some("ab".into());
        let mut right = Event::new("bc");
        right.hostname = Some("a".into());
        right.received_at = left.received_at;
        assert_ne!(left.content_id(), right.content_id());
    }

    #[test]
    fn base64_round_trips_every_length() {
        for len in 0..20u8 {
            let bytes: Vec<u8> = (0..len).map(|b| b.wrapping_mul(37)).collect();
            assert_eq!(base64_decode(&base64_encode(&bytes)).unwrap(), bytes);
        }
        assert_eq!(base64_encode(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64_encode(b"fo"), "Zm8=");
    }

    #[test]
    fn value_push_makes_a_list() {
        let mut value = Value::from("a");
        value.push(Value::from("b"));
        value.push(Value::from("c"));
        assert_eq!(value.to_string(), "a,b,c");
    }
}
