//! [`ReporterConfig`]: the reporter's TOML file — the database, the lists of hourly, daily,
//! weekly and monthly reports, the accounts the AuthFailure report may name, and e-mail.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use jiff::tz::TimeZone;
use jiff::SignedDuration;
use serde::Deserialize;

use crate::mail::MailConfig;
use crate::schedule::Period;
use crate::ReportError;

/// The reporter's configuration.
///
/// ```toml
/// database = "postgresql://root@127.0.0.1/loggr"
/// timezone = "Europe/London"
///
/// [[daily]]
/// name = "Kernel"
/// kind = "kernel"
///
/// [[daily]]
/// name = "sudo"
/// tags = ["sudo"]
/// template = "generic.txt"
/// ```
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReporterConfig {
    /// The store the reports read (see [`open_store`](crate::open_store)): a PostgreSQL
    /// connection string (`postgresql://…` URL or libpq `key=value` pairs) of the database
    /// the `postgres` sink fills, where the reporter creates its run-log table `report_run`
    /// if it is missing; or the path of the embedded SQLite store (`sqlite:PATH` or a plain
    /// path, e.g. `loggr-data/loggr.db`), which has the run log in its schema.
    pub database: String,
    /// The time zone of the reports (time words, civil times shown): an IANA name, `UTC`, or
    /// `local` (the default: the system's zone). A report may set its own.
    #[serde(default)]
    pub timezone: Option<String>,
    /// A directory of templates that override the bundled ones of the same name
    /// (`kernel.txt`, `auth_failure.txt`, `sleep.csv`, `generic.txt`) or add new ones.
    #[serde(default)]
    pub template_dir: Option<PathBuf>,
    /// How much earlier than a full period a report counts as due, for cron's start-up
    /// jitter (default `5m`; see [`crate::schedule`]).
    #[serde(default = "default_slack")]
    pub schedule_slack: SignedDuration,
    /// The accounts the AuthFailure report may name.
    #[serde(default)]
    pub accounts: AccountsConfig,
    /// E-mail delivery, for reports whose `output` is `mail`.
    #[serde(default)]
    pub mail: Option<MailConfig>,
    /// The reports run every hour.
    #[serde(default)]
    pub hourly: Vec<ReportConfig>,
    /// The reports run every day.
    #[serde(default)]
    pub daily: Vec<ReportConfig>,
    /// The reports run every week.
    #[serde(default)]
    pub weekly: Vec<ReportConfig>,
    /// The reports run every calendar month.
    #[serde(default)]
    pub monthly: Vec<ReportConfig>,
}

fn default_slack() -> SignedDuration {
    SignedDuration::from_mins(5)
}

/// Which user names the AuthFailure report prints: a name that is not a known account is
/// shown as `**INVALID**`, because it may be a password typed into the user name prompt.
///
/// A known account is one listed in `known`, or one of the `passwd_file` (its first field,
/// as `getpwnam` would find a local account; BuzzSaw used `getpwnam`, which also asks LDAP
/// or NIS when the system is set up so: list such accounts in `known`, or point
/// `passwd_file` at `getent passwd` output).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountsConfig {
    /// Account names always known.
    #[serde(default)]
    pub known: Vec<String>,
    /// A file in `/etc/passwd` format whose account names are known (default `/etc/passwd`;
    /// `""` reads none).
    #[serde(default = "default_passwd")]
    pub passwd_file: PathBuf,
}

fn default_passwd() -> PathBuf {
    PathBuf::from("/etc/passwd")
}

impl Default for AccountsConfig {
    fn default() -> Self {
        AccountsConfig {
            known: Vec::new(),
            passwd_file: default_passwd(),
        }
    }
}

impl AccountsConfig {
    /// The known account names.
    ///
    /// # Errors
    ///
    /// When `passwd_file` is set and cannot be read.
    pub fn load(&self) -> Result<HashSet<String>, ReportError> {
        let mut known: HashSet<String> = self.known.iter().cloned().collect();
        if !self.passwd_file.as_os_str().is_empty() {
            let text =
                std::fs::read_to_string(&self.passwd_file).map_err(|source| ReportError::Read {
                    path: self.passwd_file.clone(),
                    source,
                })?;
            known.extend(passwd_names(&text));
        }
        Ok(known)
    }
}

/// The account names of a passwd-format text (comments and blank lines skipped).
pub fn passwd_names(text: &str) -> impl Iterator<Item = String> + '_ {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter_map(|line| line.split(':').next())
        .filter(|name| !name.is_empty())
        .map(str::to_owned)
}

/// A bundled report, or the generic one defined by the configuration alone.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportKind {
    /// Events with the report's tags, listed by the template (default `generic.txt`).
    #[default]
    Generic,
    /// BuzzSaw's Kernel report: tags `panic`, `oops`, `oom`, `segfault`, hosts per tag.
    Kernel,
    /// BuzzSaw's AuthFailure report: tag `auth_failure` of `sshd`, top users, targets and
    /// sources.
    AuthFailure,
    /// BuzzSaw's Sleep report: wake and sleep events as CSV.
    Sleep,
}

impl ReportKind {
    /// The default tags.
    pub fn default_tags(self) -> Vec<String> {
        let tags: &[&str] = match self {
            ReportKind::Generic => &[],
            ReportKind::Kernel => &["panic", "oops", "oom", "segfault"],
            ReportKind::AuthFailure => &["auth_failure"],
            ReportKind::Sleep => &["acpi_wake", "acpi_sleep"],
        };
        tags.iter().map(|t| (*t).to_owned()).collect()
    }

    /// The default program (`None`: any).
    pub const fn default_program(self) -> Option<&'static str> {
        match self {
            // BuzzSaw's AuthFailure took any program (a bug: only sshd's lines are counted
            // by user, target and source).
            ReportKind::AuthFailure => Some("sshd"),
            _ => None,
        }
    }

    /// The default template.
    pub const fn default_template(self) -> &'static str {
        match self {
            ReportKind::Generic => "generic.txt",
            ReportKind::Kernel => "kernel.txt",
            ReportKind::AuthFailure => "auth_failure.txt",
            ReportKind::Sleep => "sleep.csv",
        }
    }

    /// The default order of the events.
    pub const fn default_order(self) -> OrderBy {
        match self {
            ReportKind::Sleep => OrderBy::Hostname,
            _ => OrderBy::Logtime,
        }
    }

    /// Whether the template gets the events by default (Kernel and AuthFailure count in the
    /// database and give only `results`).
    pub const fn default_events(self) -> bool {
        matches!(self, ReportKind::Generic | ReportKind::Sleep)
    }
}

/// The column events are ordered by (then by time, then by id): the store's.
pub use loggr_store::OrderBy;

/// Where a report goes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputKind {
    /// Printed on standard output (the default).
    #[default]
    Stdout,
    /// Sent by e-mail (needs `[mail]`).
    Mail,
}

/// One report of a list (`[[daily]]`, …).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportConfig {
    /// The report's name, unique within its list; the run log records runs by name and
    /// period.
    pub name: String,
    /// `kernel`, `auth_failure`, `sleep`, or `generic` (the default): the bundled report whose
    /// defaults and results it has.
    #[serde(default)]
    pub kind: ReportKind,
    /// Events with any of these tags are selected (default: the kind's; a generic report
    /// without tags selects every event of its range and program).
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    /// Only events of this program (`app_name`); `""` for any (default: `sshd` for
    /// AuthFailure, any for the others).
    #[serde(default)]
    pub program: Option<String>,
    /// The start of the range, a time word (see [`crate::timewords`]; default: by period,
    /// `hour-ago`, `yesterday`, `week-ago` or `last-month`). Inclusive.
    #[serde(default)]
    pub start: Option<String>,
    /// The end of the range, a time word (default: by period, `now`, `today`, `today` or
    /// `this-month`). Exclusive.
    #[serde(default)]
    pub end: Option<String>,
    /// The order of `events`: `logtime` (default; `hostname` for Sleep), `hostname`,
    /// `program`, `severity`, `facility` or `id`.
    #[serde(default)]
    pub order_by: Option<OrderBy>,
    /// The report's time zone (default: the reporter's `timezone`).
    #[serde(default)]
    pub timezone: Option<String>,
    /// The template's name: a bundled one or one of `template_dir` (default: the kind's).
    #[serde(default)]
    pub template: Option<String>,
    /// Whether the template gets `events` (default `true` for generic and Sleep reports,
    /// `false` for Kernel and AuthFailure, which get `results` computed in the database).
    #[serde(default)]
    pub events: Option<bool>,
    /// The most events handed to the template (default 100000); more are counted in
    /// `params.truncated`.
    #[serde(default = "default_limit")]
    pub limit: u32,
    /// `stdout` (default) or `mail`.
    #[serde(default)]
    pub output: OutputKind,
    /// Recipients, instead of `[mail]`'s `to`.
    #[serde(default)]
    pub to: Option<Vec<String>>,
    /// Copy recipients, instead of `[mail]`'s `cc`.
    #[serde(default)]
    pub cc: Option<Vec<String>>,
    /// The subject template, instead of `[mail]`'s `subject`.
    #[serde(default)]
    pub subject: Option<String>,
}

fn default_limit() -> u32 {
    100_000
}

impl ReportConfig {
    /// A report of this kind with every default.
    pub fn new(name: impl Into<String>, kind: ReportKind) -> Self {
        ReportConfig {
            name: name.into(),
            kind,
            tags: None,
            program: None,
            start: None,
            end: None,
            order_by: None,
            timezone: None,
            template: None,
            events: None,
            limit: default_limit(),
            output: OutputKind::Stdout,
            to: None,
            cc: None,
            subject: None,
        }
    }

    /// The tags, defaults applied.
    pub fn tags(&self) -> Vec<String> {
        self.tags
            .clone()
            .unwrap_or_else(|| self.kind.default_tags())
    }

    /// The program, defaults applied (`None`: any).
    pub fn program(&self) -> Option<String> {
        match &self.program {
            Some(program) if program.is_empty() => None,
            Some(program) => Some(program.clone()),
            None => self.kind.default_program().map(str::to_owned),
        }
    }

    /// The template name, defaults applied.
    pub fn template(&self) -> &str {
        self.template
            .as_deref()
            .unwrap_or(self.kind.default_template())
    }

    /// The order, defaults applied.
    pub fn order_by(&self) -> OrderBy {
        self.order_by.unwrap_or(self.kind.default_order())
    }

    /// Whether the template gets the events, defaults applied.
    pub fn with_events(&self) -> bool {
        self.events.unwrap_or(self.kind.default_events())
    }
}

impl ReporterConfig {
    /// Reads and checks a configuration file.
    ///
    /// # Errors
    ///
    /// When the file cannot be read, is not valid TOML for this structure, or fails
    /// [`ReporterConfig::check`].
    pub fn from_file(path: &Path) -> Result<Self, ReportError> {
        let text = std::fs::read_to_string(path).map_err(|source| ReportError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml(&text)
    }

    /// Parses and checks a configuration.
    ///
    /// # Errors
    ///
    /// As [`ReporterConfig::from_file`].
    pub fn from_toml(text: &str) -> Result<Self, ReportError> {
        let config: ReporterConfig = toml::from_str(text).map_err(ReportError::Config)?;
        config.check()?;
        Ok(config)
    }

    /// The reports of a period.
    pub fn reports(&self, period: Period) -> &[ReportConfig] {
        match period {
            Period::Hourly => &self.hourly,
            Period::Daily => &self.daily,
            Period::Weekly => &self.weekly,
            Period::Monthly => &self.monthly,
        }
    }

    /// The reporter's time zone.
    ///
    /// # Errors
    ///
    /// An unknown zone name.
    pub fn time_zone(&self) -> Result<TimeZone, ReportError> {
        time_zone(self.timezone.as_deref())
    }

    /// Checks what serde cannot: unique names per list, known time zones, mail settings for
    /// reports sent by mail, no line breaks in header values.
    ///
    /// # Errors
    ///
    /// [`ReportError::Invalid`] naming the report and the field.
    pub fn check(&self) -> Result<(), ReportError> {
        self.time_zone()?;
        for period in Period::ALL {
            let mut names = HashSet::new();
            for report in self.reports(period) {
                let invalid = |field: &str, why: String| ReportError::Invalid {
                    report: format!("{period} report `{}`", report.name),
                    field: field.to_owned(),
                    why,
                };
                if report.name.is_empty() {
                    return Err(invalid("name", "must not be empty".into()));
                }
                if !names.insert(report.name.as_str()) {
                    return Err(invalid("name", "is used twice in this list".into()));
                }
                if let Some(zone) = &report.timezone {
                    time_zone(Some(zone))?;
                }
                if report.output == OutputKind::Mail {
                    let Some(mail) = &self.mail else {
                        return Err(invalid(
                            "output",
                            "is `mail` but there is no [mail] table".into(),
                        ));
                    };
                    let to = report.to.as_ref().unwrap_or(&mail.to);
                    if to.is_empty() {
                        return Err(invalid("to", "no recipient (here or in [mail])".into()));
                    }
                }
                for (field, values) in [("to", &report.to), ("cc", &report.cc)] {
                    for value in values.iter().flatten() {
                        crate::mail::check_header(field, value)?;
                    }
                }
                if let Some(subject) = &report.subject {
                    crate::mail::check_header("subject", subject)?;
                }
            }
        }
        if let Some(mail) = &self.mail {
            mail.check()?;
        }
        Ok(())
    }
}

/// A time zone by name; `None` and `local` are the system's.
///
/// # Errors
///
/// [`ReportError::TimeZone`] for an unknown name.
pub fn time_zone(name: Option<&str>) -> Result<TimeZone, ReportError> {
    match name {
        None | Some("local") => Ok(TimeZone::system()),
        Some("UTC") | Some("utc") => Ok(TimeZone::UTC),
        Some(name) => TimeZone::get(name).map_err(|source| ReportError::TimeZone {
            name: name.to_owned(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn defaults_by_kind_and_checks() {
        let config = ReporterConfig::from_toml(
            r#"
database = "postgresql://root@127.0.0.1/loggr"
timezone = "UTC"
[[daily]]
name = "Kernel"
kind = "kernel"
[[daily]]
name = "AuthFailure"
kind = "auth_failure"
[[weekly]]
name = "any auth"
kind = "auth_failure"
program = ""
"#,
        )
        .unwrap();
        let kernel = &config.daily[0];
        assert_eq!(kernel.tags(), ["panic", "oops", "oom", "segfault"]);
        assert_eq!(kernel.program(), None);
        assert_eq!(kernel.template(), "kernel.txt");
        assert_eq!(config.daily[1].program().as_deref(), Some("sshd"));
        assert_eq!(config.weekly[0].program(), None);
        assert_eq!(config.schedule_slack, SignedDuration::from_mins(5));

        let twice = "database = \"x\"\n[[daily]]\nname = \"a\"\n[[daily]]\nname = \"a\"\n";
        assert!(matches!(
            ReporterConfig::from_toml(twice),
            Err(ReportError::Invalid { .. })
        ));
        let unknown = "database = \"x\"\n[[daily]]\nname = \"a\"\ncolour = 1\n";
        assert!(matches!(
            ReporterConfig::from_toml(unknown),
            Err(ReportError::Config(_))
        ));
        let no_mail = "database = \"x\"\n[[daily]]\nname = \"a\"\noutput = \"mail\"\n";
        assert!(matches!(
            ReporterConfig::from_toml(no_mail),
            Err(ReportError::Invalid { .. })
        ));
        let bad_zone = "database = \"x\"\ntimezone = \"Mars/Olympus\"\n";
        assert!(matches!(
            ReporterConfig::from_toml(bad_zone),
            Err(ReportError::TimeZone { .. })
        ));
    }

    #[test]
    fn passwd_names_skip_comments() {
        let names: Vec<String> =
            passwd_names("root:x:0:0::/root:/bin/sh\n# note\n\nalice:x:1000:1000::/h:/bin/sh\n")
                .collect();
        assert_eq!(names, ["root", "alice"]);
    }
}
