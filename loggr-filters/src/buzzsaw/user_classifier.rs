//! The UserClassifier vote filter: tags the kind of user named by the `userid` field.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use loggr_core::Event;
use regex::Regex;
use serde::Deserialize;

use super::{bundled, kept, BuzzsawError, Vote, VoteFilter, VoteTags};

/// The kind of a user name, as [`UserClassifier`] tags it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UserClass {
    /// `root` and its misspellings (`^r[o0]{2}t$`): tag `user_is_root`.
    Root,
    /// A person: a local account in the people group, or a name matching a person pattern:
    /// tag `user_is_real`.
    Real,
    /// Another local account, or a name of the non-personal list: tag `user_is_nonperson`.
    Nonperson,
    /// Anything else: tag `user_is_others`.
    Others,
}

impl UserClass {
    /// The tag for the class.
    pub const fn tag(self) -> &'static str {
        match self {
            UserClass::Root => "user_is_root",
            UserClass::Real => "user_is_real",
            UserClass::Nonperson => "user_is_nonperson",
            UserClass::Others => "user_is_others",
        }
    }
}

fn default_people_group() -> String {
    "people".to_owned()
}

fn default_real_patterns() -> Vec<String> {
    [r"^s{1,2}[0-9]{5}", r"^[0-9]{7}$", r"^v[0-9][a-z]+[0-9]?$"]
        .map(str::to_owned)
        .to_vec()
}

fn default_generic_prefixes() -> Vec<String> {
    [
        "account",
        "admin",
        "backup",
        "cacti",
        "cvs",
        "ftp",
        "gast",
        "guest",
        "mysql",
        "nagios",
        "oracle",
        "postgres",
        "shoutcast",
        "smb",
        "spam",
        "support",
        "sysadm",
        "teamspeak",
        "newsreaderg",
        "data",
        "usr",
        "team",
        "marketing",
        "monitoring",
        "svn",
        "feedback",
        "telnet",
        "temp",
        "test",
        "web",
        "www",
    ]
    .map(str::to_owned)
    .to_vec()
}

fn default_passwd_file() -> PathBuf {
    PathBuf::from("/etc/passwd")
}

fn default_group_file() -> PathBuf {
    PathBuf::from("/etc/group")
}

/// Configuration of the `user_classifier` filter (`[filters.user_classifier]`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserClassifierConfig {
    /// The group of people's accounts (BuzzSaw's `people`): a local account whose primary
    /// group it is, or which the group file lists as a member, is a real user (default
    /// `"people"`; a group that does not exist makes no account real).
    #[serde(default = "default_people_group")]
    pub people_group: String,
    /// Regular expressions (Rust `regex` syntax) for names that look like a person's even
    /// without a local account; matched against the mangled, lower-cased name (default
    /// `["^s{1,2}[0-9]{5}", "^[0-9]{7}$", "^v[0-9][a-z]+[0-9]?$"]`, Edinburgh's student and
    /// visitor accounts).
    #[serde(default = "default_real_patterns")]
    pub real_patterns: Vec<String>,
    /// A file of non-personal names (daemons, teams), one per line; blank lines and lines
    /// starting with `#` are skipped (default: none).
    #[serde(default)]
    pub nonpersonal_file: Option<PathBuf>,
    /// The passwd file listing local accounts, read once when the filter is built (default
    /// `/etc/passwd`).
    #[serde(default = "default_passwd_file")]
    pub passwd_file: PathBuf,
    /// The group file, read once when the filter is built (default `/etc/group`).
    #[serde(default = "default_group_file")]
    pub group_file: PathBuf,
    /// Generic name prefixes, in order: a mangled name starting with one of them becomes that
    /// prefix (`admin1` and `administrator` become `admin`). Default: BuzzSaw's list
    /// (`account`, `admin`, `backup`, …, `test`, `web`, `www`).
    #[serde(default = "default_generic_prefixes")]
    pub generic_prefixes: Vec<String>,
}

impl Default for UserClassifierConfig {
    fn default() -> Self {
        UserClassifierConfig {
            people_group: default_people_group(),
            real_patterns: default_real_patterns(),
            nonpersonal_file: None,
            passwd_file: default_passwd_file(),
            group_file: default_group_file(),
            generic_prefixes: default_generic_prefixes(),
        }
    }
}

/// BuzzSaw's UserClassifier filter: on an event already kept by an earlier filter and with a
/// non-empty `userid` field, mangles the name ([`mangle`](Self::mangle)), classifies it
/// ([`classify`](Self::classify)) and adds the class's tag (`user_is_root`, `user_is_real`,
/// `user_is_nonperson` or `user_is_others`). It always votes [`Vote::Neutral`] (it never
/// changes whether the event is kept), and adds no tag when it does not apply. The `userid`
/// field itself is left as it was.
#[derive(Clone, Debug)]
pub struct UserClassifier {
    accounts: HashSet<String>,
    people: HashSet<String>,
    nonpersonal: HashSet<String>,
    real_patterns: Vec<Regex>,
    generic_prefixes: Vec<String>,
    root: Regex,
}

fn read(field: &'static str, path: &Path) -> Result<String, BuzzsawError> {
    std::fs::read_to_string(path).map_err(|source| BuzzsawError::Read {
        field,
        path: path.display().to_string(),
        source,
    })
}

impl UserClassifier {
    /// Builds the classifier, reading the account files and the non-personal list.
    ///
    /// # Errors
    ///
    /// [`BuzzsawError::Read`] for a file that cannot be read, [`BuzzsawError::Pattern`] for a
    /// person pattern that does not compile.
    pub fn new(config: &UserClassifierConfig) -> Result<Self, BuzzsawError> {
        let passwd = read("passwd_file", &config.passwd_file)?;
        let group = read("group_file", &config.group_file)?;
        let mut people_gid = None;
        let mut people = HashSet::new();
        for line in group.lines() {
            let mut parts = line.split(':');
            if parts.next() != Some(config.people_group.as_str()) {
                continue;
            }
            people_gid = parts.nth(1).map(str::to_owned);
            if let Some(members) = parts.next() {
                people.extend(
                    members
                        .split(',')
                        .filter(|m| !m.is_empty())
                        .map(str::to_owned),
                );
            }
            break;
        }
        let mut accounts = HashSet::new();
        for line in passwd.lines() {
            let mut parts = line.split(':');
            let Some(name) = parts
                .next()
                .filter(|n| !n.is_empty() && !n.starts_with('#'))
            else {
                continue;
            };
            if people_gid.is_some() && parts.nth(2) == people_gid.as_deref() {
                people.insert(name.to_owned());
            }
            accounts.insert(name.to_owned());
        }
        // A member listed in the group file but without an account is no local account.
        people.retain(|name| accounts.contains(name));
        let nonpersonal = match &config.nonpersonal_file {
            Some(path) => read("nonpersonal_file", path)?
                .lines()
                .map(str::trim)
                .filter(|line| !line.is_empty() && !line.starts_with('#'))
                .map(str::to_owned)
                .collect(),
            None => HashSet::new(),
        };
        let real_patterns = config
            .real_patterns
            .iter()
            .map(|pattern| {
                Regex::new(pattern).map_err(|source| BuzzsawError::Pattern {
                    field: "real_patterns",
                    source,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(UserClassifier {
            accounts,
            people,
            nonpersonal,
            real_patterns,
            generic_prefixes: config.generic_prefixes.clone(),
            root: bundled(r"(?i)^r[o0]{2}t$"),
        })
    }

    /// Canonicalises a user name as BuzzSaw did: strips a leading `@@@`, lower-cases, turns
    /// `tmp` into `temp`, and collapses a name starting with a generic prefix to that prefix.
    pub fn mangle(&self, name: &str) -> String {
        let name = name.strip_prefix("@@@").unwrap_or(name).to_lowercase();
        if name == "tmp" {
            return "temp".to_owned();
        }
        match self
            .generic_prefixes
            .iter()
            .find(|prefix| name.starts_with(prefix.as_str()))
        {
            Some(prefix) => prefix.clone(),
            None => name,
        }
    }

    /// The class of a (mangled) name: root first, then a real person (an account of the
    /// people group, or a name matching a person pattern), then a non-person (another local
    /// account, or a name of the non-personal list), else others.
    pub fn classify(&self, name: &str) -> UserClass {
        if self.root.is_match(name) {
            UserClass::Root
        } else if self.people.contains(name) || self.real_patterns.iter().any(|r| r.is_match(name))
        {
            UserClass::Real
        } else if self.accounts.contains(name) || self.nonpersonal.contains(name) {
            UserClass::Nonperson
        } else {
            UserClass::Others
        }
    }
}

impl VoteFilter for UserClassifier {
    fn name(&self) -> &str {
        "user_classifier"
    }

    fn vote(&self, event: &mut Event, earlier: &[(&str, Vote)], tags: &mut VoteTags) -> Vote {
        if !kept(earlier) {
            return Vote::Neutral;
        }
        let Some(userid) = event.field("userid").and_then(|v| v.as_str()) else {
            return Vote::Neutral;
        };
        if userid.is_empty() {
            return Vote::Neutral;
        }
        tags.push_static(self.classify(&self.mangle(userid)).tag());
        Vote::Neutral
    }

    fn can_keep(&self) -> bool {
        false
    }
}
