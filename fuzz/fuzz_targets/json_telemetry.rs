//! Fuzz target: see [`fleet_fuzz::json_telemetry`].

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fleet_fuzz::json_telemetry(data));
