#![no_main]
//! See `lpwan_schc_fuzz::targets::compress`.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| lpwan_schc_fuzz::targets::compress(data));
