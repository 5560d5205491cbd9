//! # loggr-filters
//!
//! Filters operators configure: grok, BuzzSaw's voting filter stack, pyloggr's rules language,
//! packers that merge multi-line messages, user-agent parsing. Each filter implements
//! [`loggr_core::Filter`] and registers itself by name with a serde configuration.
//!
//! (Filled by the filters issue; this crate currently has no filters.)

/// Keeps this crate's plugin registrations in the final binary.
#[inline(never)]
pub fn link() {}
