//! # loggr-filters
//!
//! Filters operators configure: grok, BuzzSaw's voting filter stack, pyloggr's rules language,
//! packers that merge multi-line messages, user-agent parsing. Each filter implements
//! [`loggr_core::Filter`] and registers itself by name with a serde configuration.
//!
//! | type | kind | what |
//! | --- | --- | --- |
//! | `merge_by_time` | packer | merges consecutive lines of one host, facility and app within a time window |
//! | `merge_by_format` | packer | merges continuation lines into the last line that matched a start pattern, per host |

pub mod buzzsaw;
pub mod grok;
pub mod packers;

/// Keeps this crate's plugin registrations in the final binary.
#[inline(never)]
pub fn link() {
    buzzsaw::link();
    grok::link();
    packers::link();
}
