//! Fuzz target `rfc5424`: see `loggr_core::syslog::checks::Target::Rfc5424` for what it checks.

#![no_main]

use libfuzzer_sys::fuzz_target;
use loggr_core::syslog::checks::Target;

fuzz_target!(|data: &[u8]| Target::Rfc5424.check(data));
