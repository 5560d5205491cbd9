//! Fuzz target `auto_framing_decoder`: see `loggr_core::syslog::checks::Target::AutoFramingDecoder` for what it checks.

#![no_main]

use libfuzzer_sys::fuzz_target;
use loggr_core::syslog::checks::Target;

fuzz_target!(|data: &[u8]| Target::AutoFramingDecoder.check(data));
