//! The SSH vote filter: keeps sshd's accepted and failed logins.

use loggr_core::{Event, Text};
use regex::Regex;

use super::{bundled, program_is, Vote, VoteFilter, VoteTags};

/// BuzzSaw's SSH filter. For program `sshd` (tags `ssh`, `auth`):
///
/// - `^Accepted\s+(\S+)\s+for\s+(\S+)\s+from\s+(\S+)` votes [`Vote::Keep`], tag
///   `auth_success`;
/// - `^Failed\s+(\S+)\s+for\s+(invalid\s+user\s+)?(\S+)\s+from\s+(\S+)` votes
///   [`Vote::Keep`], tag `auth_failure`;
///
/// both setting the fields `userid`, `source_address` and `auth_method` (slices of the
/// message, no copy). Any other sshd line votes [`Vote::NoInterest`]; another program's line
/// abstains ([`Vote::Neutral`], no tags).
#[derive(Clone, Debug)]
pub struct Ssh {
    accepted: Regex,
    failed: Regex,
}

impl Ssh {
    /// The filter.
    pub fn new() -> Self {
        Ssh {
            accepted: bundled(r"^Accepted\s+(\S+)\s+for\s+(\S+)\s+from\s+(\S+)"),
            failed: bundled(r"^Failed\s+(\S+)\s+for\s+(invalid\s+user\s+)?(\S+)\s+from\s+(\S+)"),
        }
    }
}

impl Default for Ssh {
    fn default() -> Self {
        Ssh::new()
    }
}

/// Sets `userid`, `source_address` and `auth_method` from slices of `message`.
pub(super) fn set_login(
    event: &mut Event,
    message: &Text,
    user: &str,
    address: &str,
    method: Option<&str>,
) {
    event.set_field(Text::from_static("userid"), message.slice_ref(user));
    event.set_field(
        Text::from_static("source_address"),
        message.slice_ref(address),
    );
    if let Some(method) = method {
        event.set_field(Text::from_static("auth_method"), message.slice_ref(method));
    }
}

impl VoteFilter for Ssh {
    fn name(&self) -> &str {
        "ssh"
    }

    fn vote(&self, event: &mut Event, _earlier: &[(&str, Vote)], tags: &mut VoteTags) -> Vote {
        if !program_is(event, "sshd") {
            return Vote::Neutral;
        }
        tags.push_static("ssh");
        tags.push_static("auth");
        let Some(message) = event.message.as_ref() else {
            return Vote::NoInterest;
        };
        let (regex, tag, user, address) = if message.starts_with("Accepted") {
            (&self.accepted, "auth_success", 2, 3)
        } else if message.starts_with("Failed") {
            (&self.failed, "auth_failure", 3, 4)
        } else {
            return Vote::NoInterest;
        };
        let message = message.clone();
        let Some(captures) = regex.captures(&message) else {
            return Vote::NoInterest;
        };
        let group = |index: usize| captures.get(index).map_or("", |m| m.as_str());
        set_login(event, &message, group(user), group(address), Some(group(1)));
        tags.push_static(tag);
        Vote::Keep
    }
}
