//! When a report runs: its [`Period`] and the rule deciding, from the run log, whether it is
//! due. Pure: the clock and the last run are arguments.
//!
//! A selected report runs when `--all` is given ([`Decision::Forced`]), when it never ran
//! ([`Decision::NeverRan`]), or when its period has passed since its last run
//! ([`Decision::Due`]); otherwise it waits ([`Decision::NotDue`]). This is BuzzSaw's rule,
//! with two changes:
//!
//! - **Periods are calendar units in the report's time zone**: an hour, a day, a week or a
//!   month added to the last run's civil time, so a daily report stays at the same wall-clock
//!   time across DST changes, and a monthly one is due a calendar month later (BuzzSaw used
//!   the length of the month before *now* for every monthly report). A month from the 31st
//!   (or the 29th/30th) lands on the last day of a shorter month: 31 January → 29 February
//!   2024 → 29 March.
//! - **A slack** (five minutes by default) is taken off the period: cron starts the reporter
//!   a few seconds late or early, and a daily report last recorded at 06:00:03 must still run
//!   at 06:00:01 the next day, not wait a whole extra day.
//!
//! Catching up after an outage runs each overdue report **once** (it reports on its own time
//! range, `yesterday`…`today` say), and the next run is due a period after that run.

use std::fmt;

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Span, Timestamp, ToSpan};
use serde::Deserialize;

/// How often a report runs: the name of its list in the configuration (`[[daily]]`…).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Period {
    /// Every hour.
    Hourly,
    /// Every day.
    Daily,
    /// Every week.
    Weekly,
    /// Every calendar month.
    Monthly,
}

impl Period {
    /// The periods, in the order the reporter runs them.
    pub const ALL: [Period; 4] = [
        Period::Hourly,
        Period::Daily,
        Period::Weekly,
        Period::Monthly,
    ];

    /// The configuration and run-log name (`hourly`…).
    pub const fn name(self) -> &'static str {
        match self {
            Period::Hourly => "hourly",
            Period::Daily => "daily",
            Period::Weekly => "weekly",
            Period::Monthly => "monthly",
        }
    }

    /// The period as a calendar span.
    pub fn span(self) -> Span {
        match self {
            Period::Hourly => 1.hour(),
            Period::Daily => 1.day(),
            Period::Weekly => 1.week(),
            Period::Monthly => 1.month(),
        }
    }

    /// The default time range of a report of this period, as time words: the last hour, the
    /// previous day, the previous seven days, the previous calendar month.
    pub const fn default_range(self) -> (&'static str, &'static str) {
        match self {
            Period::Hourly => ("hour-ago", "now"),
            Period::Daily => ("yesterday", "today"),
            Period::Weekly => ("week-ago", "today"),
            Period::Monthly => ("last-month", "this-month"),
        }
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Period {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, String> {
        Period::ALL
            .into_iter()
            .find(|period| period.name() == name)
            .ok_or_else(|| format!("unknown period `{name}` (hourly, daily, weekly or monthly)"))
    }
}

/// Whether a report runs now, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// `--all` was given.
    Forced,
    /// The run log has no run of it.
    NeverRan,
    /// Its period has passed since its last run.
    Due {
        /// The last run.
        last: Timestamp,
    },
    /// Not yet.
    NotDue {
        /// The last run.
        last: Timestamp,
        /// When it becomes due (the slack already taken off).
        next: Timestamp,
    },
}

impl Decision {
    /// Whether the report runs.
    pub const fn runs(self) -> bool {
        !matches!(self, Decision::NotDue { .. })
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Decision::Forced => f.write_str("forced by --all"),
            Decision::NeverRan => f.write_str("never ran"),
            Decision::Due { last } => write!(f, "due, last ran {last}"),
            Decision::NotDue { last, next } => write!(f, "not due, last ran {last}, due {next}"),
        }
    }
}

/// When a report last run at `last` becomes due: `last` plus the period in `tz`'s calendar,
/// less the slack.
pub fn next_due(
    period: Period,
    last: Timestamp,
    tz: &TimeZone,
    slack: SignedDuration,
) -> Timestamp {
    let zoned = last.to_zoned(tz.clone());
    let next = zoned
        .checked_add(period.span())
        .map(|z| z.timestamp())
        // Beyond the year 9999: never due again; cannot happen with real clocks.
        .unwrap_or(Timestamp::MAX);
    next.checked_sub(slack).unwrap_or(next)
}

/// The scheduling rule (see the module docs).
pub fn decide(
    period: Period,
    last: Option<Timestamp>,
    now: Timestamp,
    tz: &TimeZone,
    slack: SignedDuration,
    force: bool,
) -> Decision {
    if force {
        return Decision::Forced;
    }
    let Some(last) = last else {
        return Decision::NeverRan;
    };
    let next = next_due(period, last, tz, slack);
    if now >= next {
        Decision::Due { last }
    } else {
        Decision::NotDue { last, next }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const SLACK: SignedDuration = SignedDuration::from_secs(300);

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn utc(period: Period, last: &str, now: &str) -> Decision {
        decide(period, Some(t(last)), t(now), &TimeZone::UTC, SLACK, false)
    }

    #[test]
    fn never_ran_runs_and_force_always_runs() {
        for period in Period::ALL {
            let now = t("2024-12-11T06:00:00Z");
            assert_eq!(
                decide(period, None, now, &TimeZone::UTC, SLACK, false),
                Decision::NeverRan
            );
            assert_eq!(
                decide(period, Some(now), now, &TimeZone::UTC, SLACK, true),
                Decision::Forced
            );
        }
    }

    #[test]
    fn due_and_not_due_for_each_period() {
        let cases = [
            (
                Period::Hourly,
                "2024-12-11T05:00:00Z",
                "2024-12-11T06:00:00Z",
                true,
            ),
            (
                Period::Hourly,
                "2024-12-11T05:30:00Z",
                "2024-12-11T06:00:00Z",
                false,
            ),
            (
                Period::Daily,
                "2024-12-10T06:00:00Z",
                "2024-12-11T06:00:00Z",
                true,
            ),
            (
                Period::Daily,
                "2024-12-10T12:00:00Z",
                "2024-12-11T06:00:00Z",
                false,
            ),
            (
                Period::Weekly,
                "2024-12-04T06:00:00Z",
                "2024-12-11T06:00:00Z",
                true,
            ),
            (
                Period::Weekly,
                "2024-12-05T06:00:00Z",
                "2024-12-11T06:00:00Z",
                false,
            ),
            (
                Period::Monthly,
                "2024-11-11T06:00:00Z",
                "2024-12-11T06:00:00Z",
                true,
            ),
            (
                Period::Monthly,
                "2024-11-20T06:00:00Z",
                "2024-12-11T06:00:00Z",
                false,
            ),
        ];
        for (period, last, now, due) in cases {
            assert_eq!(utc(period, last, now).runs(), due, "{period} {last} {now}");
        }
        assert_eq!(
            utc(
                Period::Daily,
                "2024-12-10T12:00:00Z",
                "2024-12-11T06:00:00Z"
            ),
            Decision::NotDue {
                last: t("2024-12-10T12:00:00Z"),
                next: t("2024-12-11T11:55:00Z")
            }
        );
    }

    #[test]
    fn cron_jitter_within_the_slack_still_runs() {
        // Recorded 3 s after 06:00 yesterday, started 1 s after 06:00 today.
        assert!(utc(
            Period::Daily,
            "2024-12-10T06:00:03Z",
            "2024-12-11T06:00:01Z"
        )
        .runs());
        // Ten minutes early is beyond the slack.
        assert!(!utc(
            Period::Daily,
            "2024-12-10T06:00:00Z",
            "2024-12-11T05:50:00Z"
        )
        .runs());
        // Without slack, exactly one period.
        let exact = |now: &str| {
            decide(
                Period::Hourly,
                Some(t("2024-12-11T05:00:00Z")),
                t(now),
                &TimeZone::UTC,
                SignedDuration::ZERO,
                false,
            )
            .runs()
        };
        assert!(!exact("2024-12-11T05:59:59Z"));
        assert!(exact("2024-12-11T06:00:00Z"));
    }

    #[test]
    fn monthly_across_month_lengths() {
        let next = |last: &str| {
            next_due(
                Period::Monthly,
                t(last),
                &TimeZone::UTC,
                SignedDuration::ZERO,
            )
        };
        // 31 days, 30 days, February in a leap year and in another year.
        assert_eq!(next("2024-01-10T06:00:00Z"), t("2024-02-10T06:00:00Z"));
        assert_eq!(next("2024-01-31T06:00:00Z"), t("2024-02-29T06:00:00Z"));
        assert_eq!(next("2025-01-31T06:00:00Z"), t("2025-02-28T06:00:00Z"));
        assert_eq!(next("2024-02-29T06:00:00Z"), t("2024-03-29T06:00:00Z"));
        assert_eq!(next("2024-03-31T06:00:00Z"), t("2024-04-30T06:00:00Z"));
        assert_eq!(next("2024-04-30T06:00:00Z"), t("2024-05-30T06:00:00Z"));
        assert_eq!(next("2024-12-15T06:00:00Z"), t("2025-01-15T06:00:00Z"));
        // Run on 1 February: due on 1 March after 29 days (2024), not after 31.
        assert!(utc(
            Period::Monthly,
            "2024-02-01T06:00:00Z",
            "2024-03-01T06:00:00Z"
        )
        .runs());
        assert!(!utc(
            Period::Monthly,
            "2024-02-01T06:00:00Z",
            "2024-02-29T06:00:00Z"
        )
        .runs());
        // Run on 1 January: not due on 31 January (30 days later), due on 1 February.
        assert!(!utc(
            Period::Monthly,
            "2024-01-01T06:00:00Z",
            "2024-01-31T06:00:00Z"
        )
        .runs());
        assert!(utc(
            Period::Monthly,
            "2024-01-01T06:00:00Z",
            "2024-02-01T06:00:00Z"
        )
        .runs());
    }

    #[test]
    fn daily_keeps_the_wall_clock_across_dst() {
        let paris = TimeZone::get("Europe/Paris").unwrap();
        // 06:00 in Paris on 26 October (CEST, 04:00Z); 27 October lasts 25 hours.
        let next = next_due(
            Period::Daily,
            t("2024-10-26T04:00:00Z"),
            &paris,
            SignedDuration::ZERO,
        );
        assert_eq!(next, t("2024-10-27T05:00:00Z"), "06:00 CET");
    }

    #[test]
    fn catch_up_after_an_outage_runs_each_overdue_report_once() {
        // The reporter was down for ten days; then one run with every period selected.
        let last = "2024-12-01T06:00:00Z";
        let now = t("2024-12-11T06:00:00Z");
        let runs: Vec<Period> = Period::ALL
            .into_iter()
            .filter(|&p| decide(p, Some(t(last)), now, &TimeZone::UTC, SLACK, false).runs())
            .collect();
        assert_eq!(runs, [Period::Hourly, Period::Daily, Period::Weekly]);
        // Each recorded `now`: the next run is a period after now, not ten catch-up runs.
        for period in runs {
            let again = decide(period, Some(now), now, &TimeZone::UTC, SLACK, false);
            assert!(!again.runs(), "{period} ran twice");
            let Decision::NotDue { next, .. } = again else {
                unreachable!()
            };
            assert_eq!(next, next_due(period, now, &TimeZone::UTC, SLACK));
        }
    }

    #[test]
    fn period_names() {
        for period in Period::ALL {
            assert_eq!(period.name().parse::<Period>().unwrap(), period);
        }
        assert!("yearly".parse::<Period>().is_err());
    }
}
