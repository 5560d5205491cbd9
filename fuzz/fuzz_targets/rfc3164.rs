//! Fuzz target `rfc3164`: see `loggr_core::syslog::checks::Target::Rfc3164` for what it checks.

#![no_main]

use libfuzzer_sys::fuzz_target;
use loggr_core::syslog::checks::Target;

fuzz_target!(|data: &[u8]| Target::Rfc3164.check(data));
