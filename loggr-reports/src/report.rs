//! The reporter: runs the configured reports that are due, renders each, prints or mails it,
//! and records the run; and the bundled reports' `results`.
//!
//! # The bundled reports' results
//!
//! - **Kernel** (`results.sections`): one section per tag, in the order panic, oops, oom,
//!   segfault, then any other configured tag; each has `tag`, `title` ("SERIOUS: Kernel
//!   Panic", "SERIOUS: Kernel Oops", "IMPORTANT: Out-Of-Memory", "MINOR: Segmentation Fault",
//!   else `"OTHER: <tag>"`), `host_count`, `event_count` and `hosts` (`host`, `count`), sorted
//!   by host name (byte order). Every configured tag has its section, with `0 hosts` when
//!   nothing happened: a report that says "no panic" is read differently from one that says
//!   nothing. `results.event_count` sums them.
//! - **AuthFailure**: `total` (failures), `user_count`, `target_count`, `source_count`
//!   (distinct values), and `users`, `targets`, `sources`: the `top` (10) most frequent, each
//!   `name` and `count`, by count then name. A user name that is not a known account (see
//!   [`AccountsConfig`](crate::config::AccountsConfig)) is never printed: such names count
//!   together as one `**INVALID**` entry; so does a missing user name. A missing host or
//!   source address is `(unknown)`.
//! - **Sleep** and generic reports have no results (`results` is empty); they list `events`.

use std::collections::{BTreeMap, HashSet};
use std::io::Write;

use jiff::tz::TimeZone;
use jiff::Timestamp;
use loggr_store::Store;
use minijinja::Value;
use serde::Serialize;

use crate::config::{time_zone, OutputKind, ReportConfig, ReportKind, ReporterConfig};
use crate::mail::{Envelope, Mailer};
use crate::query::{self, local_time, Selection};
use crate::render::Templates;
use crate::schedule::{decide, Period};
use crate::timewords;
use crate::ReportError;

/// What an unknown user name is shown as.
pub const INVALID_USER: &str = "**INVALID**";
/// What a missing host or address is shown as.
pub const UNKNOWN: &str = "(unknown)";
/// How many entries of each AuthFailure list are shown.
pub const TOP: usize = 10;

/// The section titles of the Kernel report, in their order.
pub const KERNEL_SECTIONS: [(&str, &str); 4] = [
    ("panic", "SERIOUS: Kernel Panic"),
    ("oops", "SERIOUS: Kernel Oops"),
    ("oom", "IMPORTANT: Out-Of-Memory"),
    ("segfault", "MINOR: Segmentation Fault"),
];

/// A reporter run's choices.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Run every selected report, due or not (`--all`).
    pub all: bool,
    /// Say what would run; render nothing, send nothing, record nothing (`--dryrun`).
    pub dryrun: bool,
    /// The periods whose reports are considered (empty: all four, in order).
    pub periods: Vec<Period>,
    /// The clock.
    pub now: Timestamp,
}

/// A rendered report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendered {
    /// The report's text.
    pub body: String,
    /// The subject, for a report sent by mail.
    pub subject: Option<String>,
}

/// What a run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunSummary {
    /// The reports that ran (or, in a dry run, would have), as `(period, name)`.
    pub ran: Vec<(Period, String)>,
    /// The reports not due.
    pub not_due: Vec<(Period, String)>,
    /// The reports that failed, with the error.
    pub failed: Vec<(Period, String, String)>,
}

/// Runs reports (see the crate docs for a tutorial).
#[derive(Debug)]
pub struct Reporter {
    config: ReporterConfig,
    tz: TimeZone,
    templates: Templates,
    known: HashSet<String>,
    mailer: Option<Mailer>,
}

#[derive(Serialize)]
struct Params {
    name: String,
    kind: &'static str,
    period: &'static str,
    start: String,
    end: String,
    start_local: String,
    end_local: String,
    timezone: String,
    tags: Vec<String>,
    program: String,
    order_by: String,
    event_count: u64,
    truncated: u64,
}

#[derive(Serialize)]
struct HostCount {
    host: String,
    count: i64,
}

#[derive(Serialize)]
struct KernelSection {
    tag: String,
    title: String,
    host_count: usize,
    event_count: i64,
    hosts: Vec<HostCount>,
}

#[derive(Serialize, Debug, PartialEq, Eq)]
struct Ranked {
    name: String,
    count: i64,
}

impl Reporter {
    /// A reporter for this configuration: loads the templates and the known accounts, and
    /// sets up the mailer when there is a `[mail]` table.
    ///
    /// # Errors
    ///
    /// A bad time zone, template, passwd file or mail setting.
    pub fn new(config: ReporterConfig) -> Result<Self, ReportError> {
        config.check()?;
        let tz = config.time_zone()?;
        let templates = Templates::new(config.template_dir.as_deref())?;
        let known = config.accounts.load()?;
        let mailer = config.mail.clone().map(Mailer::new).transpose()?;
        Ok(Reporter {
            config,
            tz,
            templates,
            known,
            mailer,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ReporterConfig {
        &self.config
    }

    /// Runs the selected reports that are due (all of them with `--all`), in period order
    /// then configuration order. A report that fails is logged and counted, and the others
    /// still run; its run is not recorded, so the next run tries it again. Reports whose
    /// output is `stdout` are written to `out`, a blank line between two; in a dry run `out` gets
    /// one line per report that would run.
    ///
    /// Works over any [`Store`]: a program opens one with [`open_store`](crate::open_store),
    /// and the all-in-one daemon passes its own (see [`Reporter::run_due`]).
    ///
    /// # Errors
    ///
    /// None today (report failures, the store's included, are in the summary); the `Result`
    /// leaves room for a failure of the whole run.
    pub async fn run(
        &self,
        store: &dyn Store,
        options: &RunOptions,
        out: &mut (dyn Write + Send),
    ) -> Result<RunSummary, ReportError> {
        let periods = if options.periods.is_empty() {
            Period::ALL.to_vec()
        } else {
            options.periods.clone()
        };
        let mut summary = RunSummary::default();
        let mut printed = false;
        for period in periods {
            for report in self.config.reports(period) {
                let name = report.name.clone();
                match self
                    .run_one(store, period, report, options, out, &mut printed)
                    .await
                {
                    Ok(true) => summary.ran.push((period, name)),
                    Ok(false) => summary.not_due.push((period, name)),
                    Err(error) => {
                        tracing::error!(%period, report = %name, error = %error_chain(&error), "A report failed");
                        summary.failed.push((period, name, error_chain(&error)));
                    }
                }
            }
        }
        Ok(summary)
    }

    /// Runs the reports that are due at `now`, all periods (what cron's hourly `reporter
    /// report` does): [`Reporter::run`] with `all` and `dryrun` off. The all-in-one daemon
    /// calls it periodically (every few minutes) with its own store, e.g. its
    /// [`SqliteStore`](loggr_store::SqliteStore) shared as `Arc<dyn Store>`: a report runs
    /// once per period whatever the calling rate, as the run log in the store records.
    ///
    /// ```no_run
    /// # async fn demo(reporter: loggr_reports::Reporter, store: std::sync::Arc<dyn loggr_store::Store>) {
    /// let mut tick = tokio::time::interval(std::time::Duration::from_secs(300));
    /// loop {
    ///     tick.tick().await;
    ///     match reporter.run_due(&*store, jiff::Timestamp::now(), &mut std::io::sink()).await {
    ///         Ok(summary) if !summary.failed.is_empty() => { /* logged already */ }
    ///         Ok(_) => {}
    ///         Err(error) => tracing::warn!(%error, "The reporter failed"),
    ///     }
    /// }
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Reporter::run`].
    pub async fn run_due(
        &self,
        store: &dyn Store,
        now: Timestamp,
        out: &mut (dyn Write + Send),
    ) -> Result<RunSummary, ReportError> {
        let options = RunOptions {
            all: false,
            dryrun: false,
            periods: Vec::new(),
            now,
        };
        self.run(store, &options, out).await
    }

    async fn run_one(
        &self,
        store: &dyn Store,
        period: Period,
        report: &ReportConfig,
        options: &RunOptions,
        out: &mut (dyn Write + Send),
        printed: &mut bool,
    ) -> Result<bool, ReportError> {
        let tz = self.report_tz(report)?;
        let last = query::last_run(store, &report.name, period).await?;
        let decision = decide(
            period,
            last,
            options.now,
            &tz,
            self.config.schedule_slack,
            options.all,
        );
        if !decision.runs() {
            tracing::debug!(%period, report = %report.name, %decision, "Not due");
            return Ok(false);
        }
        if options.dryrun {
            writeln!(
                out,
                "would run {period} report {} ({decision})",
                report.name
            )
            .map_err(ReportError::Output)?;
            return Ok(true);
        }
        tracing::info!(%period, report = %report.name, %decision, "Running a report");
        let rendered = self.render(store, period, report, options.now).await?;
        match report.output {
            OutputKind::Stdout => {
                // One blank line between the reports of a run.
                let separator: &[u8] = if *printed && !rendered.body.is_empty() {
                    b"\n"
                } else {
                    b""
                };
                *printed |= !rendered.body.is_empty();
                out.write_all(separator)
                    .and_then(|()| out.write_all(rendered.body.as_bytes()))
                    .and_then(|()| out.flush())
                    .map_err(ReportError::Output)?;
            }
            OutputKind::Mail => {
                let (Some(mailer), Some(subject)) = (&self.mailer, &rendered.subject) else {
                    return Err(ReportError::Invalid {
                        report: report.name.clone(),
                        field: "output".into(),
                        why: "is `mail` but there is no [mail] table".into(),
                    });
                };
                let mail = mailer.config();
                let envelope = Envelope {
                    to: report.to.as_deref().unwrap_or(&mail.to),
                    cc: report.cc.as_deref().unwrap_or(&mail.cc),
                    subject,
                    body: &rendered.body,
                };
                mailer.send(&envelope).await?;
            }
        }
        query::record_run(store, &report.name, period, options.now).await?;
        Ok(true)
    }

    fn report_tz(&self, report: &ReportConfig) -> Result<TimeZone, ReportError> {
        match &report.timezone {
            Some(zone) => time_zone(Some(zone)),
            None => Ok(self.tz.clone()),
        }
    }

    /// The selection of a report at `now`: its range resolved from its time words.
    ///
    /// # Errors
    ///
    /// A time word that cannot be resolved, or a time zone.
    pub fn selection(
        &self,
        period: Period,
        report: &ReportConfig,
        now: Timestamp,
    ) -> Result<Selection, ReportError> {
        let tz = self.report_tz(report)?;
        let now = now.to_zoned(tz);
        let (start, end) = period.default_range();
        let word = |word: &str| {
            timewords::resolve(word, &now).map_err(|source| ReportError::TimeWord {
                report: report.name.clone(),
                source,
            })
        };
        Ok(Selection {
            start: word(report.start.as_deref().unwrap_or(start))?,
            end: word(report.end.as_deref().unwrap_or(end))?,
            program: report.program(),
            tags: report.tags(),
            order_by: report.order_by(),
        })
    }

    /// Renders one report at `now` (without checking or recording the run log).
    ///
    /// # Errors
    ///
    /// A time word, the database, the template.
    pub async fn render(
        &self,
        store: &dyn Store,
        period: Period,
        report: &ReportConfig,
        now: Timestamp,
    ) -> Result<Rendered, ReportError> {
        let tz = self.report_tz(report)?;
        let selection = self.selection(period, report, now)?;
        let (events, event_count) = if report.with_events() {
            query::events(store, &selection, &tz, report.limit).await?
        } else {
            (Vec::new(), 0)
        };
        let results = match report.kind {
            ReportKind::Kernel => self.kernel_results(store, &selection).await?,
            ReportKind::AuthFailure => self.auth_results(store, &selection).await?,
            ReportKind::Sleep | ReportKind::Generic => {
                Value::from(BTreeMap::<String, Value>::new())
            }
        };
        let params = Params {
            name: report.name.clone(),
            kind: kind_name(report.kind),
            period: period.name(),
            start: selection.start.to_string(),
            end: selection.end.to_string(),
            start_local: local_time(selection.start, &tz),
            end_local: local_time(selection.end, &tz),
            timezone: tz.iana_name().unwrap_or("local").to_owned(),
            tags: selection.tags.clone(),
            program: selection.program.clone().unwrap_or_default(),
            order_by: selection.order_by.name().to_owned(),
            event_count,
            truncated: event_count.saturating_sub(events.len() as u64),
        };
        let context = minijinja::context! {
            events => Value::from_serialize(&events),
            results => results,
            params => Value::from_serialize(&params),
        };
        let body = self.templates.render(report.template(), &context)?;
        let subject = match (report.output, &self.config.mail) {
            (OutputKind::Mail, Some(mail)) => {
                let source = report.subject.as_deref().unwrap_or(&mail.subject);
                let subject = self.templates.render_str("subject", source, &context)?;
                let subject = subject.trim().to_owned();
                crate::mail::check_header("subject", &subject)?;
                Some(subject)
            }
            _ => None,
        };
        Ok(Rendered { body, subject })
    }

    async fn kernel_results(
        &self,
        store: &dyn Store,
        selection: &Selection,
    ) -> Result<Value, ReportError> {
        let counts = query::tag_host_counts(store, selection).await?;
        let mut order: Vec<(String, String)> = KERNEL_SECTIONS
            .iter()
            .filter(|(tag, _)| selection.tags.iter().any(|t| t == tag))
            .map(|(tag, title)| ((*tag).to_owned(), (*title).to_owned()))
            .collect();
        for tag in &selection.tags {
            if !order.iter().any(|(t, _)| t == tag) {
                order.push((tag.clone(), format!("OTHER: {tag}")));
            }
        }
        let mut total = 0;
        let sections: Vec<KernelSection> = order
            .into_iter()
            .map(|(tag, title)| {
                let mut hosts: Vec<HostCount> = counts
                    .iter()
                    .filter(|c| c.tag == tag)
                    .map(|c| HostCount {
                        host: c.host.clone().unwrap_or_else(|| UNKNOWN.to_owned()),
                        count: c.count,
                    })
                    .collect();
                hosts.sort_by(|a, b| a.host.cmp(&b.host));
                let event_count = hosts.iter().map(|h| h.count).sum();
                total += event_count;
                KernelSection {
                    tag,
                    title,
                    host_count: hosts.len(),
                    event_count,
                    hosts,
                }
            })
            .collect();
        Ok(minijinja::context! {
            sections => Value::from_serialize(&sections),
            event_count => total,
        })
    }

    async fn auth_results(
        &self,
        store: &dyn Store,
        selection: &Selection,
    ) -> Result<Value, ReportError> {
        let counts = query::auth_counts(store, selection).await?;
        let total: i64 = counts.targets.iter().map(|(_, c)| c).sum();
        let user_count = counts.users.len();
        let target_count = counts.targets.len();
        let source_count = counts.sources.len();
        let users = rank(
            counts.users.into_iter().map(|(user, count)| {
                let shown = match user {
                    Some(user) if self.known.contains(&user) => user,
                    _ => INVALID_USER.to_owned(),
                };
                (shown, count)
            }),
            TOP,
        );
        let unknown = |value: Option<String>| value.unwrap_or_else(|| UNKNOWN.to_owned());
        let targets = rank(
            counts.targets.into_iter().map(|(h, c)| (unknown(h), c)),
            TOP,
        );
        let sources = rank(
            counts.sources.into_iter().map(|(s, c)| (unknown(s), c)),
            TOP,
        );
        Ok(minijinja::context! {
            total => total,
            user_count => user_count,
            target_count => target_count,
            source_count => source_count,
            top => TOP,
            users => Value::from_serialize(&users),
            targets => Value::from_serialize(&targets),
            sources => Value::from_serialize(&sources),
        })
    }
}

/// Merges equal names, sorts by count (descending) then name, keeps `top`.
fn rank(entries: impl Iterator<Item = (String, i64)>, top: usize) -> Vec<Ranked> {
    let mut merged: BTreeMap<String, i64> = BTreeMap::new();
    for (name, count) in entries {
        *merged.entry(name).or_default() += count;
    }
    let mut ranked: Vec<Ranked> = merged
        .into_iter()
        .map(|(name, count)| Ranked { name, count })
        .collect();
    ranked.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.name.cmp(&b.name)));
    ranked.truncate(top);
    ranked
}

const fn kind_name(kind: ReportKind) -> &'static str {
    match kind {
        ReportKind::Generic => "generic",
        ReportKind::Kernel => "kernel",
        ReportKind::AuthFailure => "auth_failure",
        ReportKind::Sleep => "sleep",
    }
}

/// An error and its causes, `: `-separated.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rank_merges_sorts_and_cuts() {
        let ranked = rank(
            [
                ("b", 2),
                ("a", 2),
                ("**INVALID**", 1),
                ("c", 5),
                ("**INVALID**", 3),
            ]
            .into_iter()
            .map(|(n, c)| (n.to_owned(), c)),
            3,
        );
        let got: Vec<(&str, i64)> = ranked.iter().map(|r| (r.name.as_str(), r.count)).collect();
        assert_eq!(got, [("c", 5), ("**INVALID**", 4), ("a", 2)]);
    }
}
