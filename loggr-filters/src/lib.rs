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
//! | `rules` | filter | pyloggr's rules language: conditions, tags, field assignment, filter calls, `drop`, `stop` |
//! | `useragent` | filter | browser, version, OS and category from a user-agent field; tag `bot` for crawlers |

pub mod buzzsaw;
pub mod grok;
pub mod packers;
pub mod rules;
pub mod useragent;

/// Keeps this crate's plugin registrations in the final binary.
#[inline(never)]
pub fn link() {
    buzzsaw::link();
    grok::link();
    packers::link();
    rules::link();
    useragent::link();
}
