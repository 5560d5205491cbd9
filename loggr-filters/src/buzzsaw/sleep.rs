//! The Sleep vote filter: keeps lcfg-sleep's suspend and resume lines.

use loggr_core::Event;

use super::{program_is, Vote, VoteFilter, VoteTags};

/// BuzzSaw's Sleep filter. For program `lcfg-sleep` (tag `sleep`), the message exactly
/// `Waking up` votes [`Vote::Keep`] with tag `acpi_wake`, exactly `Going to sleep`
/// [`Vote::Keep`] with tag `acpi_sleep` (pm-utils hooks log them with
/// `logger -t lcfg-sleep`). Any other lcfg-sleep line votes [`Vote::NoInterest`]; another
/// program's line abstains ([`Vote::Neutral`], no tags).
#[derive(Clone, Copy, Debug, Default)]
pub struct Sleep;

impl VoteFilter for Sleep {
    fn name(&self) -> &str {
        "sleep"
    }

    fn vote(&self, event: &mut Event, _earlier: &[(&str, Vote)], tags: &mut VoteTags) -> Vote {
        if !program_is(event, "lcfg-sleep") {
            return Vote::Neutral;
        }
        tags.push_static("sleep");
        let tag = match event.message.as_deref() {
            Some("Waking up") => "acpi_wake",
            Some("Going to sleep") => "acpi_sleep",
            _ => return Vote::NoInterest,
        };
        tags.push_static(tag);
        Vote::Keep
    }
}
