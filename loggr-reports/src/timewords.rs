//! BuzzSaw's time words (`now`, `today`, `yesterday`, `this-week`, …): the bounds of a
//! report's time range, resolved against "now" in the report's time zone. Pure: the clock is
//! an argument, so every word is tested at fixed instants.
//!
//! | word | instant |
//! | --- | --- |
//! | `now` | now |
//! | `recent` | ten minutes ago |
//! | `hour-ago` | one hour ago (loggr's addition, for hourly reports) |
//! | `today` | midnight starting today |
//! | `yesterday` | midnight starting yesterday |
//! | `this-week` | midnight starting this week's Monday |
//! | `week-ago` | midnight starting the day seven days ago |
//! | `this-month` | midnight starting the first day of this month |
//! | `last-month` | midnight starting the first day of last month (loggr's addition) |
//! | `this-year` | midnight starting the first of January |
//! | digits only (`1733788800`) | seconds since the Unix epoch |
//! | `2024-12-10` | midnight starting that day |
//! | `2024-12-10 08:00`, `2024-12-10T08:00:00` | that civil time |
//! | `2024-12-10T08:00:00Z`, `…+01:00` | that instant (the zone is ignored) |
//!
//! Midnight and civil times are in the report's time zone; a civil time that does not exist
//! (a DST gap) or exists twice resolves as jiff's `compatible` rule says (the later/earlier
//! instant, as `date` does).
//!
//! Differences from BuzzSaw's `BuzzSaw::DateTime`, all deliberate:
//!
//! - BuzzSaw put `today`, `this-week`… one second after midnight, which lost the events of
//!   that first second from the report starting there; ranges here are half-open
//!   (`start <= logtime < end`), so consecutive reports neither overlap nor leave gaps.
//! - BuzzSaw's `yesterday` was "24 hours ago" (it truncated a copy and then subtracted from
//!   the untruncated now), and `week-ago` "168 hours ago"; both start at midnight here, so a
//!   daily report run at 06:00 covers the whole previous day.
//! - Free-form dates (BuzzSaw handed them to `Date::Parse`) are limited to the ISO forms
//!   above: a misspelt date is an error rather than a surprising instant.

use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan, Zoned};

/// A time word could not be resolved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TimeWordError {
    /// Not a known word, epoch or date.
    #[error(
        "unknown time `{0}` (expected now, recent, hour-ago, today, yesterday, this-week, \
         week-ago, this-month, last-month, this-year, an epoch or a date such as 2024-12-10)"
    )]
    Unknown(String),
    /// A known form whose value is out of range (a year 99999, an epoch too large).
    #[error("time `{word}` is out of range")]
    OutOfRange {
        /// The word.
        word: String,
        /// Why.
        #[source]
        source: jiff::Error,
    },
}

/// Resolves `word` to an instant, with `now` (in the report's time zone) as the clock.
///
/// # Errors
///
/// [`TimeWordError::Unknown`] for anything not in the table of the module docs.
///
/// ```
/// use jiff::{tz::TimeZone, Timestamp};
/// use loggr_reports::timewords::resolve;
///
/// let now = "2024-12-11T06:00:00Z".parse::<Timestamp>().unwrap().to_zoned(TimeZone::UTC);
/// assert_eq!(resolve("yesterday", &now).unwrap().to_string(), "2024-12-10T00:00:00Z");
/// assert_eq!(resolve("today", &now).unwrap().to_string(), "2024-12-11T00:00:00Z");
/// ```
pub fn resolve(word: &str, now: &Zoned) -> Result<Timestamp, TimeWordError> {
    let word = word.trim();
    let range = |source: jiff::Error| TimeWordError::OutOfRange {
        word: word.to_owned(),
        source,
    };
    let tz = now.time_zone();
    let today = now.date();
    let instant = match word {
        "now" => now.timestamp(),
        "recent" => now.checked_sub(10.minutes()).map_err(range)?.timestamp(),
        "hour-ago" => now.checked_sub(1.hour()).map_err(range)?.timestamp(),
        "today" => midnight(today, tz).map_err(range)?,
        "yesterday" => midnight(today.yesterday().map_err(range)?, tz).map_err(range)?,
        "this-week" => {
            let back = i64::from(today.weekday().to_monday_zero_offset());
            midnight(today.checked_sub(back.days()).map_err(range)?, tz).map_err(range)?
        }
        "week-ago" => midnight(today.checked_sub(7.days()).map_err(range)?, tz).map_err(range)?,
        "this-month" => midnight(today.first_of_month(), tz).map_err(range)?,
        "last-month" => midnight(
            today
                .first_of_month()
                .checked_sub(1.month())
                .map_err(range)?,
            tz,
        )
        .map_err(range)?,
        "this-year" => midnight(today.first_of_year(), tz).map_err(range)?,
        _ if !word.is_empty() && word.bytes().all(|b| b.is_ascii_digit()) => {
            let seconds: i64 = word
                .parse()
                .map_err(|_| TimeWordError::Unknown(word.to_owned()))?;
            Timestamp::from_second(seconds).map_err(range)?
        }
        _ => return parse_date(word, tz).ok_or_else(|| TimeWordError::Unknown(word.to_owned())),
    };
    Ok(instant)
}

/// The first instant of `date` in `tz`.
fn midnight(date: Date, tz: &TimeZone) -> Result<Timestamp, jiff::Error> {
    Ok(date.to_zoned(tz.clone())?.timestamp())
}

/// An instant with an offset, a civil date-time, or a date (midnight).
fn parse_date(word: &str, tz: &TimeZone) -> Option<Timestamp> {
    if let Ok(instant) = word.parse::<Timestamp>() {
        return Some(instant);
    }
    if let Ok(civil) = word.parse::<DateTime>() {
        return civil.to_zoned(tz.clone()).ok().map(|z| z.timestamp());
    }
    // `2024-12-10 08:00` (no seconds): jiff wants `T` or seconds in some forms.
    if let Some((date, time)) = word.split_once(' ') {
        let civil = format!("{date}T{time}");
        if let Ok(civil) = civil.parse::<DateTime>() {
            return civil.to_zoned(tz.clone()).ok().map(|z| z.timestamp());
        }
    }
    word.parse::<Date>().ok().and_then(|d| midnight(d, tz).ok())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn at(instant: &str, zone: &str) -> Zoned {
        instant
            .parse::<Timestamp>()
            .unwrap()
            .to_zoned(TimeZone::get(zone).unwrap())
    }

    fn word(w: &str, now: &Zoned) -> String {
        resolve(w, now).unwrap().to_string()
    }

    #[test]
    fn words_in_utc() {
        // Wednesday 11 December 2024, 06:30 UTC.
        let now = at("2024-12-11T06:30:00Z", "UTC");
        assert_eq!(word("now", &now), "2024-12-11T06:30:00Z");
        assert_eq!(word("recent", &now), "2024-12-11T06:20:00Z");
        assert_eq!(word("hour-ago", &now), "2024-12-11T05:30:00Z");
        assert_eq!(word("today", &now), "2024-12-11T00:00:00Z");
        assert_eq!(word("yesterday", &now), "2024-12-10T00:00:00Z");
        assert_eq!(word("this-week", &now), "2024-12-09T00:00:00Z");
        assert_eq!(word("week-ago", &now), "2024-12-04T00:00:00Z");
        assert_eq!(word("this-month", &now), "2024-12-01T00:00:00Z");
        assert_eq!(word("last-month", &now), "2024-11-01T00:00:00Z");
        assert_eq!(word("this-year", &now), "2024-01-01T00:00:00Z");
        assert_eq!(word(" 1733788800 ", &now), "2024-12-10T00:00:00Z");
        assert_eq!(word("2024-12-10", &now), "2024-12-10T00:00:00Z");
        assert_eq!(word("2024-12-10 08:00", &now), "2024-12-10T08:00:00Z");
        assert_eq!(word("2024-12-10T08:00:05", &now), "2024-12-10T08:00:05Z");
        assert_eq!(
            word("2024-12-10T08:00:00+01:00", &now),
            "2024-12-10T07:00:00Z"
        );
    }

    #[test]
    fn this_week_on_a_monday_and_a_sunday() {
        let monday = at("2024-12-09T00:00:00Z", "UTC");
        assert_eq!(word("this-week", &monday), "2024-12-09T00:00:00Z");
        let sunday = at("2024-12-15T23:59:59Z", "UTC");
        assert_eq!(word("this-week", &sunday), "2024-12-09T00:00:00Z");
    }

    #[test]
    fn midnight_is_the_report_zones() {
        // 06:30 UTC is 07:30 in Paris (CET) and 01:30 in New York (EST).
        let paris = at("2024-12-11T06:30:00Z", "Europe/Paris");
        assert_eq!(word("today", &paris), "2024-12-10T23:00:00Z");
        assert_eq!(word("2024-12-10", &paris), "2024-12-09T23:00:00Z");
        let york = at("2024-12-11T03:30:00Z", "America/New_York");
        assert_eq!(word("today", &york), "2024-12-10T05:00:00Z");
        assert_eq!(word("yesterday", &york), "2024-12-09T05:00:00Z");
        // January: last month is the previous year's December.
        let january = at("2025-01-15T12:00:00Z", "UTC");
        assert_eq!(word("last-month", &january), "2024-12-01T00:00:00Z");
    }

    #[test]
    fn yesterday_across_a_dst_change_is_a_calendar_day() {
        // Paris left summer time on 27 October 2024: that day lasted 25 hours.
        let now = at("2024-10-28T09:00:00Z", "Europe/Paris");
        assert_eq!(word("yesterday", &now), "2024-10-26T22:00:00Z");
        assert_eq!(word("today", &now), "2024-10-27T23:00:00Z");
    }

    #[test]
    fn unknown_words_are_errors() {
        let now = at("2024-12-11T06:30:00Z", "UTC");
        for bad in ["", "tomorrow", "2024-13-01", "last week", "12/10/2024"] {
            assert!(
                matches!(resolve(bad, &now), Err(TimeWordError::Unknown(_))),
                "{bad:?}"
            );
        }
        assert!(resolve("99999999999999999999", &now).is_err());
    }
}
