//! Fuzz target: see [`fleet_fuzz::order_csv`].

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fleet_fuzz::order_csv(data));
