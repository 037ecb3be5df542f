//! Fuzz target: see [`fleet_fuzz::jt808_frame`].

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fleet_fuzz::jt808_frame(data));
