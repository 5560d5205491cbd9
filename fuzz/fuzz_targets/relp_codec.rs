//! Fuzz target `relp_codec`: see `loggr_relp::checks::codec` for what it checks.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| loggr_relp::checks::codec(data));
