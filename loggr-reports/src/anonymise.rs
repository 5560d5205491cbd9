//! Anonymising old events (BuzzSaw's `anonymisedata`): personal data is kept only so long.
//!
//! Events older than the maximum age (`logtime` before now less `max_age`, in the calendar
//! of the given time zone) that still hold any of `raw`, `message` or `userid` get `raw` and
//! `userid` set to NULL and `message` to `''`; every `extra_info` row of an event older than
//! the maximum age is deleted. Tags, times, hosts, programs, severities stay, so reports
//! over old periods still count. Both changes are one transaction of the store
//! ([`Store::anonymise`]): a failure changes nothing. Running again changes nothing: an
//! anonymised event no longer matches, and its fields are gone.
//!
//! `logtime < cutoff` uses the `event (logtime, …)` index; the fields are packed in the event's
//! own row in both stores (`extra_info` is a view over it), so clearing them updates the
//! same rows, in the same transaction.

use jiff::tz::TimeZone;
use jiff::{Span, Timestamp};
use loggr_store::Store;

use crate::ReportError;

/// What an anonymisation changed (or, in a dry run, would change).
pub use loggr_store::AnonymiseCounts as AnonymiseStats;

/// The instant before which events are anonymised: `now` less `max_age` in `tz`'s calendar
/// (`26 weeks`, `190 days`, `6 months`; jiff's friendly or ISO 8601 duration format).
///
/// # Errors
///
/// [`ReportError::MaxAge`] when `max_age` does not parse, is negative or zero, or is out of
/// range.
pub fn cutoff(now: Timestamp, max_age: &str, tz: &TimeZone) -> Result<Timestamp, ReportError> {
    let bad = |why: String| ReportError::MaxAge {
        value: max_age.to_owned(),
        why,
    };
    let span: Span = max_age
        .trim()
        .parse()
        .map_err(|e: jiff::Error| bad(e.to_string()))?;
    if span.is_negative() || span.is_zero() {
        return Err(bad("must be positive".into()));
    }
    now.to_zoned(tz.clone())
        .checked_sub(span)
        .map(|z| z.timestamp())
        .map_err(|e| bad(e.to_string()))
}

/// Anonymises the events older than `cutoff` (see the module docs); with `dryrun`, only
/// counts what would change.
///
/// # Errors
///
/// [`ReportError::Database`]; a failed transaction is rolled back.
pub async fn anonymise(
    store: &dyn Store,
    cutoff: Timestamp,
    dryrun: bool,
) -> Result<AnonymiseStats, ReportError> {
    store
        .anonymise(cutoff, dryrun)
        .await
        .map_err(|e| ReportError::db("anonymise old events", e))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn cutoff_in_calendar_units() {
        let now: Timestamp = "2024-12-11T06:00:00Z".parse().unwrap();
        let utc = TimeZone::UTC;
        assert_eq!(
            cutoff(now, "26 weeks", &utc).unwrap().to_string(),
            "2024-06-12T06:00:00Z"
        );
        assert_eq!(
            cutoff(now, "190 days", &utc).unwrap().to_string(),
            "2024-06-04T06:00:00Z"
        );
        assert_eq!(
            cutoff(now, "6 months", &utc).unwrap().to_string(),
            "2024-06-11T06:00:00Z"
        );
        assert_eq!(
            cutoff(now, "P1D", &utc).unwrap().to_string(),
            "2024-12-10T06:00:00Z"
        );
        for bad in ["", "soon", "0 days", "-3 days"] {
            assert!(
                matches!(cutoff(now, bad, &utc), Err(ReportError::MaxAge { .. })),
                "{bad:?}"
            );
        }
    }
}
