//! Fuzz target `json`: see `loggr_core::syslog::checks::Target::Json` for what it checks.

#![no_main]

use libfuzzer_sys::fuzz_target;
use loggr_core::syslog::checks::Target;

fuzz_target!(|data: &[u8]| Target::Json.check(data));
