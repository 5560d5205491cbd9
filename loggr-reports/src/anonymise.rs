//! Anonymising old events (BuzzSaw's `anonymisedata`): personal data is kept only so long.
//!
//! Events older than the maximum age (`logtime` before now less `max_age`, in the calendar
//! of the given time zone) that still hold any of `raw`, `message` or `userid` get `raw` and
//! `userid` set to NULL and `message` to `''`; every `extra_info` row of an event older than
//! the maximum age is deleted. Tags, times, hosts, programs, severities stay, so reports
//! over old periods still count. As BuzzSaw did, the events are updated in one transaction
//! and the fields deleted in another: were the second to fail, running again deletes them
//! (it looks at every old event, not only those just anonymised). Running again changes
//! nothing else: an anonymised event no longer matches.
//!
//! `logtime < cutoff` uses the `event (logtime)` index; the fields are found through
//! `extra_info (event, name)`.

use jiff::tz::TimeZone;
use jiff::{Span, Timestamp};
use tokio_postgres::Client;

use crate::ReportError;

/// What an anonymisation changed (or, in a dry run, would change).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AnonymiseStats {
    /// Events whose `raw`, `message` and `userid` were blanked.
    pub events: u64,
    /// `extra_info` rows deleted.
    pub extra_info: u64,
}

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

const OLD_WITH_DATA: &str = "logtime < $1 AND \
    (raw IS NOT NULL OR userid IS NOT NULL OR (message IS NOT NULL AND message <> ''))";

/// Anonymises the events older than `cutoff` (see the module docs); with `dryrun`, only
/// counts what would change.
///
/// # Errors
///
/// [`ReportError::Database`]; a failed transaction is rolled back.
pub async fn anonymise(
    client: &mut Client,
    cutoff: Timestamp,
    dryrun: bool,
) -> Result<AnonymiseStats, ReportError> {
    let db = |what: &'static str| move |e| ReportError::db(what, e);
    if dryrun {
        let events: i64 = client
            .query_one(
                &format!("SELECT count(*) FROM event WHERE {OLD_WITH_DATA}"),
                &[&cutoff],
            )
            .await
            .map_err(db("count the events to anonymise"))?
            .get(0);
        let extra_info: i64 = client
            .query_one(
                "SELECT count(*) FROM extra_info \
                 WHERE event IN (SELECT id FROM event WHERE logtime < $1)",
                &[&cutoff],
            )
            .await
            .map_err(db("count the fields to delete"))?
            .get(0);
        return Ok(AnonymiseStats {
            events: u64::try_from(events).unwrap_or_default(),
            extra_info: u64::try_from(extra_info).unwrap_or_default(),
        });
    }
    let transaction = client
        .transaction()
        .await
        .map_err(db("begin the anonymisation"))?;
    let events = transaction
        .execute(
            &format!(
                "UPDATE event SET raw = NULL, message = '', userid = NULL WHERE {OLD_WITH_DATA}"
            ),
            &[&cutoff],
        )
        .await
        .map_err(db("anonymise old events"))?;
    transaction
        .commit()
        .await
        .map_err(db("commit the anonymised events"))?;
    let transaction = client
        .transaction()
        .await
        .map_err(db("begin the field deletion"))?;
    let extra_info = transaction
        .execute(
            "DELETE FROM extra_info WHERE event IN (SELECT id FROM event WHERE logtime < $1)",
            &[&cutoff],
        )
        .await
        .map_err(db("delete old fields"))?;
    transaction
        .commit()
        .await
        .map_err(db("commit the field deletion"))?;
    tracing::info!(%cutoff, events, extra_info, "Anonymised old events");
    Ok(AnonymiseStats { events, extra_info })
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
