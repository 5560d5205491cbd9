//! Fuzz target `relp_session`: see `loggr_relp::checks::session` for what it checks.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| loggr_relp::checks::session(data));
