//! Black-box tests: one binary for the whole suite (compile once).

mod api;
mod cli;
mod clock_ahead;
mod dispatch;
mod driver_offline;
mod faults;
mod fuzz_regressions;
mod gateway_gbt32960;
mod gateway_jt808;
mod health;
mod ingest;
mod live;
mod mqtt_security;
mod openapi;
mod order_store;
mod orders;
mod pages;
mod pages_driver;
mod pages_orders;
mod pages_stats;
mod security;
mod simulate_tcp;
mod slow_clients;
mod startup;
mod stats;
mod storage;
