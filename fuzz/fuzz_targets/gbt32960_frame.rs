//! Fuzz target: see [`fleet_fuzz::gbt32960_frame`].

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fleet_fuzz::gbt32960_frame(data));
