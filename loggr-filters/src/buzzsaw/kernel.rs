//! The Kernel vote filter: keeps segfaults, out-of-memory kills, panics and oopses.

use loggr_core::Event;
use regex::Regex;

use super::{bundled, program_is, Vote, VoteFilter, VoteTags};

/// BuzzSaw's Kernel filter. For program `kernel` (tag `kernel`), the first of these
/// case-insensitive patterns that matches the message votes [`Vote::Keep`] with its tag:
///
/// | pattern | tag |
/// |---|---|
/// | `segfault` (anywhere) | `segfault` |
/// | `^(.+ invoked oom-killer\|Out of memory\|Killed process)` | `oom` |
/// | `^(kernel panic \|panic occurred)` | `panic` |
/// | `^(Oops:\|BUG:\|kernel BUG\|Unable to handle) ` | `oops` |
///
/// Any other kernel line votes [`Vote::NoInterest`]; another program's line abstains
/// ([`Vote::Neutral`], no tags).
#[derive(Clone, Debug)]
pub struct Kernel {
    rules: [(Regex, &'static str); 4],
}

impl Kernel {
    /// The filter.
    pub fn new() -> Self {
        Kernel {
            rules: [
                (bundled(r"(?i)segfault"), "segfault"),
                (
                    bundled(r"(?i)^(?:.+ invoked oom-killer|Out of memory|Killed process)"),
                    "oom",
                ),
                (bundled(r"(?i)^(?:kernel panic |panic occurred)"), "panic"),
                (
                    bundled(r"(?i)^(?:Oops:|BUG:|kernel BUG|Unable to handle) "),
                    "oops",
                ),
            ],
        }
    }
}

impl Default for Kernel {
    fn default() -> Self {
        Kernel::new()
    }
}

impl VoteFilter for Kernel {
    fn name(&self) -> &str {
        "kernel"
    }

    fn vote(&self, event: &mut Event, _earlier: &[(&str, Vote)], tags: &mut VoteTags) -> Vote {
        if !program_is(event, "kernel") {
            return Vote::Neutral;
        }
        tags.push_static("kernel");
        let message = event.message_str();
        match self.rules.iter().find(|(regex, _)| regex.is_match(message)) {
            Some((_, tag)) => {
                tags.push_static(tag);
                Vote::Keep
            }
            None => Vote::NoInterest,
        }
    }
}
