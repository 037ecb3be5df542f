//! Black-box tests: one binary for the whole suite (compile once).

mod cli;
mod ingest;
mod storage;
