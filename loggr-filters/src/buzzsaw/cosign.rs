//! The Cosign vote filter: keeps cosignd's login registrations.

use loggr_core::{Event, Text};
use regex::Regex;

use super::{bundled, program_is, Vote, VoteFilter, VoteTags};

/// BuzzSaw's Cosign filter. For program `cosignd` (tags `cosign`, `auth`),
/// `^REGISTER\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)$` (user, realm, address, service) votes
/// [`Vote::Keep`] with tag `auth_success` and the fields `userid`, `source_address` and
/// `cosign_service`. Any other cosignd line votes [`Vote::NoInterest`]; another program's line
/// abstains ([`Vote::Neutral`], no tags).
///
/// BuzzSaw accepted only IPv4 addresses; this filter takes any non-blank address (IPv6 too).
#[derive(Clone, Debug)]
pub struct Cosign {
    register: Regex,
}

impl Cosign {
    /// The filter.
    pub fn new() -> Self {
        Cosign {
            register: bundled(r"^REGISTER\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)$"),
        }
    }
}

impl Default for Cosign {
    fn default() -> Self {
        Cosign::new()
    }
}

impl VoteFilter for Cosign {
    fn name(&self) -> &str {
        "cosign"
    }

    fn vote(&self, event: &mut Event, _earlier: &[(&str, Vote)], tags: &mut VoteTags) -> Vote {
        if !program_is(event, "cosignd") {
            return Vote::Neutral;
        }
        tags.push_static("cosign");
        tags.push_static("auth");
        let message = match event.message.as_ref() {
            Some(message) if message.starts_with("REGISTER") => message.clone(),
            _ => return Vote::NoInterest,
        };
        let Some(captures) = self.register.captures(&message) else {
            return Vote::NoInterest;
        };
        let group = |index: usize| captures.get(index).map_or("", |m| m.as_str());
        super::ssh::set_login(event, &message, group(1), group(3), None);
        event.set_field(
            Text::from_static("cosign_service"),
            message.slice_ref(group(4)),
        );
        tags.push_static("auth_success");
        Vote::Keep
    }
}
