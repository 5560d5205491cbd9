//! rsyslog's trusted properties: the `@[_PID=… _UID=… _GID=… _COMM=… _EXE=… _CMDLINE=…]`
//! suffix `imuxsock` (with `annotate="on"`) appends to local messages.
//!
//! [`extract`] removes the suffix from the message and turns each property into a field named
//! after it in lowercase without the underscore: `pid`, `uid`, `gid` (integers), `comm`,
//! `exe`, `cmdline` (strings), and any other `_NAME` as `name`.

use crate::event::{Event, Text, Value};

/// The suffix's opening.
const OPEN: &str = " @[_";

/// Moves a trusted-properties suffix of `event.message` into fields; returns whether there
/// was one. A message that only looks like one (no `_NAME=` pairs, no closing `]`) is left
/// alone.
pub fn extract(event: &mut Event) -> bool {
    let Some(message) = event.message.as_ref() else {
        return false;
    };
    let text: &str = message;
    let trimmed = text.trim_end_matches([' ', '\r', '\n']);
    // The common case, decided without a search: no `]` at the end, no suffix.
    if !trimmed.ends_with(']') {
        return false;
    }
    let Some(open) = trimmed.rfind(OPEN) else {
        return false;
    };
    let Some(body) = trimmed
        .get(open + OPEN.len() - 1..)
        .and_then(|rest| rest.strip_suffix(']'))
    else {
        return false;
    };
    let Some(pairs) = split_pairs(body) else {
        return false;
    };
    for (name, value) in pairs {
        let key = name.to_ascii_lowercase();
        let value = match key.as_str() {
            "pid" | "uid" | "gid" => value
                .parse::<i64>()
                .map_or_else(|_| Value::from(value.to_owned()), Value::Int),
            _ => Value::from(value.to_owned()),
        };
        event.fields.insert(Text::from(key), value);
    }
    let kept = text.get(..open).unwrap_or_default();
    event.message = if kept.is_empty() {
        None
    } else {
        Some(message.slice_ref(kept))
    };
    true
}

/// Splits `_A=1 _B=two words _C=3` into pairs; a value runs to the next ` _NAME=`.
fn split_pairs(body: &str) -> Option<Vec<(&str, &str)>> {
    let bytes = body.as_bytes();
    // Offsets of each `_NAME=` start.
    let mut starts = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        if bytes.get(at) == Some(&b'_') && (at == 0 || bytes.get(at - 1) == Some(&b' ')) {
            let name_end = bytes
                .get(at + 1..)?
                .iter()
                .position(|b| !(b.is_ascii_uppercase() || b.is_ascii_digit() || *b == b'_'));
            if let Some(len) = name_end {
                if len > 0 && bytes.get(at + 1 + len) == Some(&b'=') {
                    starts.push((at, at + 1 + len));
                }
            }
        }
        at += 1;
    }
    if starts.first().map(|(start, _)| *start) != Some(0) {
        return None;
    }
    let mut pairs = Vec::with_capacity(starts.len());
    for (index, &(start, eq)) in starts.iter().enumerate() {
        let end = starts
            .get(index + 1)
            .map_or(body.len(), |(next, _)| next - 1);
        let name = body.get(start + 1..eq)?;
        let value = body.get(eq + 1..end.max(eq + 1))?;
        pairs.push((name, value));
    }
    Some(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffix_becomes_fields() {
        let mut event = Event::new(
            "Accepted publickey for alice @[_PID=812 _UID=0 _GID=0 _COMM=sshd \
             _EXE=/usr/sbin/sshd _CMDLINE=sshd: alice [priv]]",
        );
        assert!(extract(&mut event));
        assert_eq!(event.message_str(), "Accepted publickey for alice");
        assert_eq!(event.field("pid"), Some(&Value::Int(812)));
        assert_eq!(event.field("uid"), Some(&Value::Int(0)));
        assert_eq!(event.field("comm").and_then(Value::as_str), Some("sshd"));
        assert_eq!(
            event.field("cmdline").and_then(Value::as_str),
            Some("sshd: alice [priv]")
        );
    }

    #[test]
    fn look_alikes_are_left_alone() {
        for text in [
            "mail to a@[host]",
            "x @[_]",
            "x @[PID=1]",
            "x @[_PID=1",
            "@[_PID=1]",
        ] {
            let mut event = Event::new(text);
            assert!(!extract(&mut event), "{text}");
            assert_eq!(event.message_str(), text);
        }
    }
}
