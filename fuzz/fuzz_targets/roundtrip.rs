#![no_main]
//! See `lpwan_schc_fuzz::targets::roundtrip`.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| lpwan_schc_fuzz::targets::roundtrip(data));
