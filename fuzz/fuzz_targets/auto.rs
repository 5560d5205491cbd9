//! Fuzz target `auto`: see `loggr_core::syslog::checks::Target::Auto` for what it checks.

#![no_main]

use libfuzzer_sys::fuzz_target;
use loggr_core::syslog::checks::Target;

fuzz_target!(|data: &[u8]| Target::Auto.check(data));
