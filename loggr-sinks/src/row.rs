//! How an [`Event`] maps onto the logical schema, the same for every backend: which text goes
//! into which column, which fields become `extra_info` rows, which tags are stored.
//!
//! | event | column |
//! | --- | --- |
//! | content id | `digest` (32 bytes) |
//! | `timestamp`, else `received_at` | `logtime` (and `reported` says which) |
//! | `app_name` / `procid` | `program` / `pid` |
//! | the `userid` field, when it is text | `userid` (not repeated in `extra_info`) |
//! | every other field | `extra_info` rows (a list gives one row per item), packed in the event's row ([`extra_json`]) |
//! | tags | the event's `tags`, and `tag` rows to find events by tag |

use std::borrow::Cow;

use loggr_core::encode::json_string;
use loggr_core::{Event, StructuredData, Text, Value};

/// The field stored in the `userid` column (when its value is text) instead of `extra_info`.
pub const USERID: &str = "userid";

/// What replaces a NUL character in stored text (PostgreSQL text cannot hold `\0`; SQLite's
/// text functions stop at it).
pub const NUL_REPLACEMENT: char = '\u{FFFD}';

/// Text as a store keeps it: NUL characters replaced by [`NUL_REPLACEMENT`].
///
/// ```
/// assert_eq!(loggr_sinks::row::store_text("a\0b"), "a\u{FFFD}b");
/// ```
pub fn store_text(text: &str) -> Cow<'_, str> {
    if text.contains('\0') {
        Cow::Owned(text.replace('\0', "\u{FFFD}"))
    } else {
        Cow::Borrowed(text)
    }
}

/// The `userid` column's value: the `userid` field when it is text.
pub fn userid(event: &Event) -> Option<Cow<'_, str>> {
    match event.fields.get(USERID) {
        Some(Value::String(userid)) => Some(store_text(userid)),
        _ => None,
    }
}

/// Whether a field goes to `extra_info` (everything but a text `userid`, which has its column).
fn is_extra(name: &str, value: &Value) -> bool {
    name != USERID || !matches!(value, Value::String(_))
}

/// The tags of an event as stored (NUL replaced), each once.
pub fn tag_names(event: &Event) -> Vec<Cow<'_, str>> {
    let mut names: Vec<Cow<'_, str>> = event.tags.iter().map(|tag| store_text(tag)).collect();
    // `Tags` is a set; replacing NUL can make two of them equal (and break the key).
    if event.tags.iter().any(|tag| tag.contains('\0')) {
        names.sort_unstable();
        names.dedup();
    }
    names
}

/// Writes the event's extra_info rows into `out` as the stores pack them: a JSON array of
/// `[name, value]` pairs in [`for_each_extra`] order. Returns `false`, with `out` left empty,
/// when there are none.
///
/// ```
/// let mut event = loggr_core::Event::empty(loggr_core::Timestamp::UNIX_EPOCH);
/// event.set_field("port", "22");
/// let mut out = Vec::new();
/// assert!(loggr_sinks::row::extra_json(&event, &mut out));
/// assert_eq!(out, br#"[["port","22"]]"#);
/// ```
pub fn extra_json(event: &Event, out: &mut Vec<u8>) -> bool {
    out.clear();
    for_each_extra(event, |name, value| {
        out.push(if out.is_empty() { b'[' } else { b',' });
        out.push(b'[');
        json_string(out, &name);
        out.push(b',');
        json_string(out, &value);
        out.push(b']');
    });
    if out.is_empty() {
        return false;
    }
    out.push(b']');
    true
}

/// Calls `row` with each extra_info row of the event: (name, value as text), a list giving one
/// row per item, without the `userid` that has its column.
pub fn for_each_extra<'a>(event: &'a Event, mut row: impl FnMut(Cow<'a, str>, Cow<'a, str>)) {
    for (name, value) in event.fields.iter() {
        if is_extra(name, value) {
            visit_values(store_text(name), value, &mut row);
        }
    }
}

fn visit_values<'a>(
    name: Cow<'a, str>,
    value: &'a Value,
    row: &mut impl FnMut(Cow<'a, str>, Cow<'a, str>),
) {
    match value {
        Value::List(items) => {
            for item in items {
                visit_values(name.clone(), item, row);
            }
        }
        Value::String(text) => row(name, store_text(text)),
        other => row(name, Cow::Owned(other.to_string())),
    }
}

/// The structured data as JSON text, `None` when there is none; NUL characters replaced.
pub fn structured_data_json(sd: &StructuredData) -> Option<Vec<u8>> {
    if sd.is_empty() {
        return None;
    }
    let has_nul = sd.elements.iter().any(|element| {
        element.id.contains('\0')
            || element
                .params
                .iter()
                .any(|param| param.name.contains('\0') || param.value.contains('\0'))
    });
    let json = if has_nul {
        let mut clean = sd.clone();
        for element in &mut clean.elements {
            element.id = Text::from(store_text(&element.id).into_owned());
            for param in &mut element.params {
                param.name = Text::from(store_text(&param.name).into_owned());
                param.value = Text::from(store_text(&param.value).into_owned());
            }
        }
        serde_json::to_vec(&clean)
    } else {
        serde_json::to_vec(sd)
    };
    // Serializing strings into memory cannot fail.
    json.ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use loggr_core::Value;

    #[test]
    fn nul_is_replaced_and_clean_text_is_borrowed() {
        assert!(matches!(store_text("plain"), Cow::Borrowed("plain")));
        assert_eq!(store_text("a\0b\0"), "a\u{FFFD}b\u{FFFD}");
    }

    #[test]
    fn fields_become_name_value_pairs_without_the_userid_column() {
        let mut event = Event::new("m");
        event.set_field("userid", "alice");
        event.set_field("ips", Value::List(vec!["a".into(), "b\0".into()]));
        event.set_field("bytes", 42i64);
        assert_eq!(userid(&event).as_deref(), Some("alice"));
        let mut out = Vec::new();
        assert!(extra_json(&event, &mut out));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "[[\"bytes\",\"42\"],[\"ips\",\"a\"],[\"ips\",\"b\u{FFFD}\"]]"
        );
    }

    #[test]
    fn only_a_text_userid_alone_has_no_extra_info() {
        let mut event = Event::new("m");
        let mut out = b"left over".to_vec();
        assert!(!extra_json(&event, &mut out));
        assert!(out.is_empty());
        event.set_field("userid", "alice");
        assert!(!extra_json(&event, &mut out), "userid goes to its column");
        event.set_field("userid", 42i64);
        assert!(
            extra_json(&event, &mut out),
            "a number userid goes to extra_info"
        );
        assert_eq!(out, br#"[["userid","42"]]"#);
    }

    #[test]
    fn tags_equal_once_nul_is_replaced_are_stored_once() {
        let mut event = Event::new("m");
        event.add_tag("a\0");
        event.add_tag("a\u{FFFD}");
        event.add_tag("b");
        assert_eq!(tag_names(&event), ["a\u{FFFD}", "b"]);
    }

    #[test]
    fn structured_data_with_nul_is_cleaned_and_empty_is_null() {
        assert!(structured_data_json(&StructuredData::default()).is_none());
        let mut sd = StructuredData::default();
        sd.push("x@1", "k", "v\0");
        let json = structured_data_json(&sd).unwrap();
        assert_eq!(
            String::from_utf8(json).unwrap(),
            r#"{"x@1":{"k":"v\ufffd"}}"#.replace("\\ufffd", "\u{FFFD}")
        );
    }
}
