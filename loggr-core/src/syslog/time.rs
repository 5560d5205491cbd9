//! Timestamps: hand-written RFC 3339 parsing straight to an epoch instant (days-from-civil
//! arithmetic, no allocation, no time zone lookup), RFC 3164 `Mmm dd hh:mm:ss` stamps, and the
//! resolution of year-less stamps against a reception time and a time zone (with [`jiff`]).

use jiff::civil::DateTime;
use jiff::tz::{Offset, TimeZone};
use jiff::Timestamp;

/// Why a time zone name was not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown time zone `{name}` (expected an IANA name, `UTC`, `local` or `+HH:MM`)")]
pub struct TimeZoneError {
    /// The name given.
    pub name: String,
}

/// Resolves a time zone name: `UTC` (or `Z`), `local` (the system zone), a fixed offset
/// `+HH:MM` / `-HH:MM`, or an IANA name such as `Europe/Paris`.
///
/// # Errors
///
/// A [`TimeZoneError`] when the name is none of these.
pub fn time_zone(name: &str) -> Result<TimeZone, TimeZoneError> {
    let error = || TimeZoneError {
        name: name.to_owned(),
    };
    match name {
        "UTC" | "utc" | "Z" => return Ok(TimeZone::UTC),
        "local" | "" => return Ok(TimeZone::system()),
        _ => {}
    }
    let bytes = name.as_bytes();
    if matches!(bytes.first(), Some(b'+' | b'-')) {
        let (seconds, used) = parse_offset(bytes, 0).ok_or_else(error)?;
        if used != bytes.len() {
            return Err(error());
        }
        let offset = Offset::from_seconds(seconds).map_err(|_| error())?;
        return Ok(TimeZone::fixed(offset));
    }
    TimeZone::get(name).map_err(|_| error())
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = if year >= 0 { year } else { year - 399 } / 400;
    let year_of_era = year - era * 400;
    let shifted_month = i64::from((month + 9) % 12);
    let day_of_year = (153 * shifted_month + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// Whether `year` is a Gregorian leap year.
pub fn is_leap_year(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

/// The number of days in a month (1–12) of a year.
pub fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn digits(bytes: &[u8], at: usize, count: usize) -> Option<u32> {
    let mut value = 0u32;
    for index in at..at + count {
        let byte = *bytes.get(index)?;
        if !byte.is_ascii_digit() {
            return None;
        }
        value = value * 10 + u32::from(byte - b'0');
    }
    Some(value)
}

/// Parses `+HH:MM` / `-HH:MM` at `at`: the offset in seconds and the bytes used.
fn parse_offset(bytes: &[u8], at: usize) -> Option<(i32, usize)> {
    let sign = match bytes.get(at)? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let hours = digits(bytes, at + 1, 2)?;
    if bytes.get(at + 3) != Some(&b':') {
        return None;
    }
    let minutes = digits(bytes, at + 4, 2)?;
    if hours > 23 || minutes > 59 {
        return None;
    }
    Some((sign * (hours * 3600 + minutes * 60) as i32, 6))
}

/// The parts of an RFC 3339 timestamp.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rfc3339 {
    /// The instant, when the stamp had an offset (always, unless `offset_optional`).
    pub instant: Option<Timestamp>,
    /// The civil (wall-clock) date and time as written.
    pub civil: DateTime,
    /// The bytes the stamp took.
    pub len: usize,
}

/// An RFC 3339 timestamp that could not be read; `at` is the offending byte offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeError {
    /// Byte offset of the problem, relative to the start of the stamp.
    pub at: usize,
}

/// Parses an RFC 3339 `full-date "T" full-time` at the start of `bytes` (RFC 5424's
/// `TIMESTAMP` without the NILVALUE): `YYYY-MM-DDTHH:MM:SS[.F{1,max_fraction}](Z|±HH:MM)`.
///
/// `T` and `Z` must be uppercase, the date must exist (leap years checked), seconds go up to
/// 59 (RFC 5424 forbids leap seconds). With `offset_optional`, a stamp without offset is
/// accepted and its `instant` is `None` (the caller resolves the civil time in a zone).
///
/// # Errors
///
/// A [`TimeError`] with the offset of the first byte that does not fit.
pub fn parse_rfc3339(
    bytes: &[u8],
    max_fraction: usize,
    offset_optional: bool,
) -> Result<Rfc3339, TimeError> {
    let fail = |at| Err(TimeError { at });
    let expect = |at: usize, byte: u8| bytes.get(at) == Some(&byte);
    let Some(year) = digits(bytes, 0, 4) else {
        return fail(0);
    };
    if !expect(4, b'-') {
        return fail(4);
    }
    let month = match digits(bytes, 5, 2) {
        Some(month @ 1..=12) => month,
        _ => return fail(5),
    };
    if !expect(7, b'-') {
        return fail(7);
    }
    let day = match digits(bytes, 8, 2) {
        Some(day) if day >= 1 && day <= days_in_month(i64::from(year), month) => day,
        _ => return fail(8),
    };
    if !expect(10, b'T') {
        return fail(10);
    }
    let hour = match digits(bytes, 11, 2) {
        Some(hour @ 0..=23) => hour,
        _ => return fail(11),
    };
    if !expect(13, b':') {
        return fail(13);
    }
    let minute = match digits(bytes, 14, 2) {
        Some(minute @ 0..=59) => minute,
        _ => return fail(14),
    };
    if !expect(16, b':') {
        return fail(16);
    }
    let second = match digits(bytes, 17, 2) {
        Some(second @ 0..=59) => second,
        _ => return fail(17),
    };
    let mut at = 19;
    let mut nanos = 0u32;
    if expect(at, b'.') {
        at += 1;
        let start = at;
        while let Some(byte) = bytes.get(at).filter(|b| b.is_ascii_digit()) {
            if at - start >= max_fraction {
                return fail(at);
            }
            nanos = nanos * 10 + u32::from(byte - b'0');
            at += 1;
        }
        if at == start {
            return fail(at);
        }
        for _ in (at - start)..9 {
            nanos *= 10;
        }
    }
    let offset = match bytes.get(at) {
        Some(b'Z') => {
            at += 1;
            Some(0)
        }
        Some(b'+' | b'-') => {
            let (offset, used) = parse_offset(bytes, at).ok_or(TimeError { at })?;
            at += used;
            Some(offset)
        }
        _ if offset_optional => None,
        _ => return fail(at),
    };
    let civil = jiff::civil::date(year as i16, month as i8, day as i8).at(
        hour as i8,
        minute as i8,
        second as i8,
        nanos as i32,
    );
    let instant = match offset {
        Some(offset) => {
            let seconds = days_from_civil(i64::from(year), month, day) * 86_400
                + i64::from(hour * 3600 + minute * 60 + second)
                - i64::from(offset);
            Some(Timestamp::new(seconds, nanos as i32).map_err(|_| TimeError { at: 0 })?)
        }
        None => None,
    };
    Ok(Rfc3339 {
        instant,
        civil,
        len: at,
    })
}

/// The month number (1–12) of a three-letter English abbreviation, any case.
pub fn month_from_abbrev(bytes: &[u8]) -> Option<u32> {
    let [a, b, c] = [bytes.first()?, bytes.get(1)?, bytes.get(2)?].map(u8::to_ascii_lowercase);
    Some(match &[a, b, c] {
        b"jan" => 1,
        b"feb" => 2,
        b"mar" => 3,
        b"apr" => 4,
        b"may" => 5,
        b"jun" => 6,
        b"jul" => 7,
        b"aug" => 8,
        b"sep" => 9,
        b"oct" => 10,
        b"nov" => 11,
        b"dec" => 12,
        _ => return None,
    })
}

/// The three-letter English abbreviation of a month (1–12).
pub fn month_abbrev(month: i8) -> &'static str {
    const NAMES: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    usize::try_from(month - 1)
        .ok()
        .and_then(|index| NAMES.get(index))
        .copied()
        .unwrap_or("Jan")
}

/// An RFC 3164 stamp as written: `Mmm dd [yyyy] hh:mm:ss[.frac]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BsdStamp {
    /// The year, when the stamp carried one.
    pub year: Option<i16>,
    /// Month 1–12.
    pub month: i8,
    /// Day 1–31.
    pub day: i8,
    /// Hour.
    pub hour: i8,
    /// Minute.
    pub minute: i8,
    /// Second.
    pub second: i8,
    /// Nanoseconds (some devices add a fraction).
    pub nanos: i32,
    /// Bytes used.
    pub len: usize,
}

/// Parses an RFC 3164 stamp at the start of `bytes`, leniently as devices send it: month
/// name in any case, day space- or zero-padded or single-digit, an optional year before the
/// time (`Mar 7 2008 19:06:53`), an optional fraction. Returns `None` if it is not one.
pub fn parse_bsd_stamp(bytes: &[u8]) -> Option<BsdStamp> {
    let month = month_from_abbrev(bytes)? as i8;
    let mut at = 3;
    if bytes.get(at) != Some(&b' ') {
        return None;
    }
    while bytes.get(at) == Some(&b' ') {
        at += 1;
    }
    let (day, used) = number(bytes, at, 2)?;
    at += used;
    if !(1..=31).contains(&day) || bytes.get(at) != Some(&b' ') {
        return None;
    }
    at += 1;
    let mut year = None;
    if bytes.get(at + 4) == Some(&b' ') {
        if let Some(value) = digits(bytes, at, 4) {
            year = Some(value as i16);
            at += 5;
        }
    }
    let hour = digits(bytes, at, 2)?;
    let minute = digits(bytes, at + 3, 2)?;
    let second = digits(bytes, at + 6, 2)?;
    if bytes.get(at + 2) != Some(&b':') || bytes.get(at + 5) != Some(&b':') {
        return None;
    }
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    at += 8;
    let mut nanos = 0i32;
    if bytes.get(at) == Some(&b'.') && bytes.get(at + 1).is_some_and(u8::is_ascii_digit) {
        at += 1;
        let mut scale = 100_000_000;
        while let Some(byte) = bytes.get(at).filter(|b| b.is_ascii_digit()) {
            nanos += i32::from(byte - b'0') * scale;
            scale /= 10;
            at += 1;
        }
    }
    Some(BsdStamp {
        year,
        month,
        day: day as i8,
        hour: hour as i8,
        minute: minute as i8,
        // A leap second (`:60`) is folded into the last second of the minute.
        second: second.min(59) as i8,
        nanos,
        len: at,
    })
}

fn number(bytes: &[u8], at: usize, max: usize) -> Option<(u32, usize)> {
    let mut value = 0u32;
    let mut used = 0;
    while let Some(byte) = bytes.get(at + used).filter(|b| b.is_ascii_digit()) {
        if used == max {
            return None;
        }
        value = value * 10 + u32::from(byte - b'0');
        used += 1;
    }
    (used > 0).then_some((value, used))
}

/// Resolves a civil date and time in `tz` to an instant (a time in a DST gap moves forward,
/// an ambiguous one takes the earlier instant). `None` if the date does not exist.
pub fn resolve_civil(civil: DateTime, tz: &TimeZone) -> Option<Timestamp> {
    if tz == &TimeZone::UTC {
        let date = civil.date();
        let seconds = days_from_civil(
            i64::from(date.year()),
            date.month() as u32,
            date.day() as u32,
        ) * 86_400
            + i64::from(civil.hour()) * 3600
            + i64::from(civil.minute()) * 60
            + i64::from(civil.second());
        return Timestamp::new(seconds, civil.subsec_nanosecond()).ok();
    }
    tz.to_ambiguous_timestamp(civil).compatible().ok()
}

/// How far in the future of the reception time a year-less stamp may be (clock skew, zone
/// mistakes); a stamp further ahead is taken to be from the year before.
pub const FUTURE_SLACK_SECONDS: i64 = 7 * 86_400;

/// Resolves an RFC 3164 stamp to an instant: its own year, else `year`, else the year that
/// puts it nearest to `received_at` without being more than [`FUTURE_SLACK_SECONDS`] ahead
/// (so `Dec 31 23:59:59` received on Jan 1 is last year's, `Jan 1 00:00:05` received on
/// Dec 31 next year's, and `Jul 1` received on Jan 1 last year's).
/// The wall-clock time is read in `tz`. `None` if no such date exists (Feb 30, or Feb 29 with
/// a year given that is not a leap year).
pub fn resolve_bsd(
    stamp: &BsdStamp,
    year: Option<i16>,
    tz: &TimeZone,
    received_at: Timestamp,
) -> Option<Timestamp> {
    let at = |year: i16| {
        let date = jiff::civil::Date::new(year, stamp.month, stamp.day).ok()?;
        let civil = date.at(stamp.hour, stamp.minute, stamp.second, stamp.nanos);
        resolve_civil(civil, tz)
    };
    if let Some(year) = stamp.year.or(year) {
        return at(year);
    }
    let current = received_at.to_zoned(tz.clone()).year();
    let mut best: Option<Timestamp> = None;
    let distance = |t: Timestamp| (t.as_second() - received_at.as_second()).unsigned_abs();
    for candidate in [current - 1, current, current.saturating_add(1)] {
        let Some(instant) = at(candidate) else {
            continue;
        };
        if instant.as_second() - received_at.as_second() > FUTURE_SLACK_SECONDS {
            continue;
        }
        if best.is_none_or(|b| distance(instant) < distance(b)) {
            best = Some(instant);
        }
    }
    if best.is_none() {
        // Feb 29 away from a leap year: the most recent leap year.
        best = (1..8).find_map(|back| at(current.saturating_sub(back)));
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instant(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn days_from_civil_matches_jiff_over_a_wide_range() {
        for year in [
            -400i16, -1, 0, 1, 1600, 1900, 1969, 1970, 2000, 2024, 2100, 9998,
        ] {
            for month in 1..=12i8 {
                let day = days_in_month(i64::from(year), month as u32) as i8;
                let date = jiff::civil::date(year, month, day);
                let expected = date
                    .to_zoned(TimeZone::UTC)
                    .unwrap()
                    .timestamp()
                    .as_second();
                assert_eq!(
                    days_from_civil(i64::from(year), month as u32, day as u32) * 86_400,
                    expected,
                    "{date}"
                );
            }
        }
    }

    #[test]
    fn rfc3339_parses_offsets_fractions_and_rejects_bad_dates() {
        let parsed = parse_rfc3339(b"2003-08-24T05:14:15.000003-07:00 rest", 9, false).unwrap();
        assert_eq!(parsed.instant, Some(instant("2003-08-24T12:14:15.000003Z")));
        assert_eq!(parsed.len, 32);
        let parsed = parse_rfc3339(b"2019-01-20T00:46:39+05:45", 9, false).unwrap();
        assert_eq!(parsed.instant, Some(instant("2019-01-19T19:01:39Z")));
        let parsed = parse_rfc3339(b"1985-04-12T23:20:50.52Z", 6, false).unwrap();
        assert_eq!(parsed.instant, Some(instant("1985-04-12T23:20:50.52Z")));
        let nine = b"2003-08-24T05:14:15.123456789+07:00";
        assert!(parse_rfc3339(nine, 6, false).is_err());
        assert!(parse_rfc3339(nine, 9, false).is_ok());
        for bad in [
            &b"2018-02-29T00:00:00Z"[..],
            b"2016-02-30T00:00:00Z",
            b"2003-09-29T22:99:16Z",
            b"2003-09-29T22:09:60Z",
            b"2006-01-02t15:04:05Z",
            b"2006-01-02T15:04:05z",
            b"2006-01-02T15:04:05-24:00",
            b"2006-01-02T15:04:05.Z",
            b"2006-01-02T15:04:05",
            b"2006-01-0",
            b"",
        ] {
            assert!(
                parse_rfc3339(bad, 9, false).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        assert!(parse_rfc3339(b"2016-02-29T00:00:00Z", 9, false).is_ok());
        let local = parse_rfc3339(b"2016-02-29T00:00:00 x", 9, true).unwrap();
        assert_eq!(local.instant, None);
        assert_eq!(local.len, 19);
    }

    #[test]
    fn bsd_stamps_are_read_leniently() {
        let stamp = parse_bsd_stamp(b"Mar  7 19:06:53 host").unwrap();
        assert_eq!(
            (stamp.month, stamp.day, stamp.hour, stamp.len),
            (3, 7, 19, 15)
        );
        let stamp = parse_bsd_stamp(b"AUG 10 22:18:24").unwrap();
        assert_eq!((stamp.month, stamp.day), (8, 10));
        let stamp = parse_bsd_stamp(b"Mar 7 2008 19:06:53: x").unwrap();
        assert_eq!((stamp.year, stamp.len), (Some(2008), 19));
        let stamp = parse_bsd_stamp(b"Jun 8 11:54:08.929 x").unwrap();
        assert_eq!(stamp.nanos, 929_000_000);
        assert!(parse_bsd_stamp(b"Foo 8 11:54:08").is_none());
        assert!(parse_bsd_stamp(b"Jun 32 11:54:08").is_none());
        assert!(parse_bsd_stamp(b"Jun 3 1:54:08").is_none());
        assert!(parse_bsd_stamp(b"Jun").is_none());
    }

    #[test]
    fn year_less_stamps_resolve_to_the_nearest_year() {
        let stamp = parse_bsd_stamp(b"Dec 31 23:59:59").unwrap();
        let received = instant("2025-01-01T00:00:10Z");
        let at = resolve_bsd(&stamp, None, &TimeZone::UTC, received).unwrap();
        assert_eq!(at, instant("2024-12-31T23:59:59Z"));
        let stamp = parse_bsd_stamp(b"Jan  1 00:00:05").unwrap();
        let received = instant("2024-12-31T23:59:50Z");
        let at = resolve_bsd(&stamp, None, &TimeZone::UTC, received).unwrap();
        assert_eq!(at, instant("2025-01-01T00:00:05Z"));
        let at = resolve_bsd(&stamp, Some(1999), &TimeZone::UTC, received).unwrap();
        assert_eq!(at, instant("1999-01-01T00:00:05Z"));
        let paris = time_zone("Europe/Paris").unwrap();
        let stamp = parse_bsd_stamp(b"Jan  5 15:33:03").unwrap();
        let at = resolve_bsd(&stamp, Some(2020), &paris, received).unwrap();
        assert_eq!(at, instant("2020-01-05T14:33:03Z"));
        let leap = parse_bsd_stamp(b"Feb 29 12:00:00").unwrap();
        let at = resolve_bsd(&leap, None, &TimeZone::UTC, instant("2023-06-01T00:00:00Z"));
        assert_eq!(at, Some(instant("2020-02-29T12:00:00Z")));
        assert_eq!(
            resolve_bsd(&leap, Some(2023), &TimeZone::UTC, received),
            None
        );
    }

    #[test]
    fn time_zone_names() {
        assert_eq!(time_zone("UTC").unwrap(), TimeZone::UTC);
        let fixed = time_zone("+05:00").unwrap();
        assert_eq!(
            fixed.to_offset(Timestamp::UNIX_EPOCH),
            Offset::from_seconds(5 * 3600).unwrap()
        );
        assert!(time_zone("Europe/Paris").is_ok());
        assert!(time_zone("Nowhere/Special").is_err());
        assert!(time_zone("+5").is_err());
    }
}
