//! The Redis spool's conventions, shared by its sink (`loggr-sinks`, `redis_spool`) and its
//! source (`loggr-sources`, `redis_spool`) without either depending on a Redis client here.
//!
//! A spool is a Redis list of **entries**. Each entry is one encoded batch of events in loggr's
//! wire format ([`crate::wire`]) behind a one-line header that names its content type and
//! encoding, so an entry can be replayed into RabbitMQ byte for byte:
//!
//! ```text
//! loggr-spool/1 <content-type>\t<content-encoding or empty>\n<body>
//! ```
//!
//! The reliable-queue pattern (Redis's `LMOVE` recipe): a consumer moves an entry from the
//! spool list to its own *processing* list, hands the events on, and removes the entry
//! (`LREM`) only after every event was committed downstream; on Retry the entry goes back to
//! the head of the spool, on Reject to the *dead-letter* list. A consumer that restarts first
//! moves its processing list back to the spool, so nothing taken but unfinished is stranded.
//!
//! ```
//! use loggr_core::spool::{decode_entry, encode_entry};
//!
//! let entry = encode_entry("application/json", None, br#"{"message":"hi"}"#);
//! let decoded = decode_entry(&entry).unwrap();
//! assert_eq!(decoded.content_type, "application/json");
//! assert_eq!(decoded.content_encoding, None);
//! assert_eq!(decoded.body, br#"{"message":"hi"}"#);
//! ```

/// The first bytes of every spool entry (the format's version is the number).
pub const ENTRY_MAGIC: &[u8] = b"loggr-spool/1 ";

/// An entry's parts, borrowed from the entry's bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpoolEntry<'a> {
    /// The body's content type (see [`crate::wire`]).
    pub content_type: &'a str,
    /// The body's compression, if any (`lz4`, …).
    pub content_encoding: Option<&'a str>,
    /// The encoded events.
    pub body: &'a [u8],
}

/// A spool entry that cannot be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum SpoolError {
    /// The entry does not start with [`ENTRY_MAGIC`] (another program wrote it, or a newer
    /// loggr).
    #[error("not a loggr spool entry (expected it to start with `loggr-spool/1 `)")]
    BadMagic,
    /// The header line is unterminated or not UTF-8.
    #[error("the spool entry's header line is malformed")]
    BadHeader,
    /// Redis evicts keys under memory pressure, which would silently delete spooled events.
    #[error(
        "Redis maxmemory-policy is `{0}`, which may evict the spool: set it to `noeviction` \
         (or a `volatile-*` policy; spool keys have no TTL)"
    )]
    EvictionPolicy(String),
}

/// Frames an encoded batch as a spool entry.
pub fn encode_entry(content_type: &str, content_encoding: Option<&str>, body: &[u8]) -> Vec<u8> {
    let encoding = content_encoding.unwrap_or("");
    let mut entry = Vec::with_capacity(
        ENTRY_MAGIC.len() + content_type.len() + encoding.len() + 2 + body.len(),
    );
    entry.extend_from_slice(ENTRY_MAGIC);
    entry.extend_from_slice(content_type.as_bytes());
    entry.push(b'\t');
    entry.extend_from_slice(encoding.as_bytes());
    entry.push(b'\n');
    entry.extend_from_slice(body);
    entry
}

/// Splits a spool entry into its header and body.
///
/// # Errors
///
/// [`SpoolError::BadMagic`] or [`SpoolError::BadHeader`].
pub fn decode_entry(entry: &[u8]) -> Result<SpoolEntry<'_>, SpoolError> {
    let rest = entry
        .strip_prefix(ENTRY_MAGIC)
        .ok_or(SpoolError::BadMagic)?;
    let newline = rest
        .iter()
        .position(|&byte| byte == b'\n')
        .ok_or(SpoolError::BadHeader)?;
    let header = std::str::from_utf8(&rest[..newline]).map_err(|_| SpoolError::BadHeader)?;
    let (content_type, encoding) = header.split_once('\t').ok_or(SpoolError::BadHeader)?;
    if content_type.is_empty() {
        return Err(SpoolError::BadHeader);
    }
    Ok(SpoolEntry {
        content_type,
        content_encoding: (!encoding.is_empty()).then_some(encoding),
        body: &rest[newline + 1..],
    })
}

/// The processing list of one consumer of `spool_key`.
pub fn processing_key(spool_key: &str, consumer: &str) -> String {
    format!("{spool_key}:processing:{consumer}")
}

/// The default dead-letter list of `spool_key`.
pub fn dead_letter_key(spool_key: &str) -> String {
    format!("{spool_key}:dead")
}

/// Checks Redis's `maxmemory-policy`: only policies that never evict a key without a TTL are
/// safe for a spool.
///
/// # Errors
///
/// [`SpoolError::EvictionPolicy`] for `allkeys-*` policies and unknown ones.
pub fn check_eviction_policy(policy: &str) -> Result<(), SpoolError> {
    match policy {
        "noeviction" | "volatile-lru" | "volatile-lfu" | "volatile-random" | "volatile-ttl" => {
            Ok(())
        }
        other => Err(SpoolError::EvictionPolicy(other.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_with_and_without_encoding() {
        let body = b"line one\nline two\n\x00\xff";
        for encoding in [None, Some("lz4")] {
            let entry = encode_entry("application/x-test", encoding, body);
            let decoded = decode_entry(&entry).unwrap();
            assert_eq!(decoded.content_type, "application/x-test");
            assert_eq!(decoded.content_encoding, encoding);
            assert_eq!(decoded.body, body);
        }
    }

    #[test]
    fn foreign_and_torn_entries_are_errors() {
        assert_eq!(decode_entry(b"{\"message\":1}"), Err(SpoolError::BadMagic));
        assert_eq!(
            decode_entry(b"loggr-spool/1 application/json"),
            Err(SpoolError::BadHeader)
        );
        assert_eq!(
            decode_entry(b"loggr-spool/1 application/json\n{}"),
            Err(SpoolError::BadHeader)
        );
        assert_eq!(
            decode_entry(b"loggr-spool/1 \t\n{}"),
            Err(SpoolError::BadHeader)
        );
    }

    #[test]
    fn only_policies_that_keep_ttl_less_keys_are_accepted() {
        assert!(check_eviction_policy("noeviction").is_ok());
        assert!(check_eviction_policy("volatile-lru").is_ok());
        for bad in [
            "allkeys-lru",
            "allkeys-lfu",
            "allkeys-random",
            "something-new",
        ] {
            assert_eq!(
                check_eviction_policy(bad),
                Err(SpoolError::EvictionPolicy(bad.to_owned()))
            );
        }
    }

    #[test]
    fn key_names() {
        assert_eq!(
            processing_key("loggr:spool", "host-a"),
            "loggr:spool:processing:host-a"
        );
        assert_eq!(dead_letter_key("loggr:spool"), "loggr:spool:dead");
    }
}
