//! Fuzz target `rfc3339`: see `loggr_core::syslog::checks::Target::Rfc3339` for what it checks.

#![no_main]

use libfuzzer_sys::fuzz_target;
use loggr_core::syslog::checks::Target;

fuzz_target!(|data: &[u8]| Target::Rfc3339.check(data));
