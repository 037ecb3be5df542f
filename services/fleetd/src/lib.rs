//! `fleetd`, the platform's only binary, as a library: configuration, composition of the
//! services (ingest, dispatch, web) around one store, bus and broker connection, their
//! supervision, and the subcommands (`run`, `migrate`, `simulate`, `bench`, `mqtt-passwd`).
//! The black-box tests start the same `App` the binary runs.

pub mod app;
pub mod bootstrap;
pub mod cli;
pub mod config;
pub mod gateway_tls;
pub mod housekeeping;
pub mod mqtt_passwd;
pub mod mqtt_tls;
pub mod observability;
pub mod relay;
pub mod sessions;
pub mod simulate_cmd;
pub mod supervise;
mod thread_runtime;

pub use app::{App, Stopped};
pub use config::{MqttTarget, Settings};
