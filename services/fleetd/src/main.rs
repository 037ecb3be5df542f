//! The `fleetd` binary: parses the command line, runs the subcommand, maps the outcome to
//! the exit codes README.md documents (0 clean, 64 bad configuration, 1 anything else).

use std::process::ExitCode;

use clap::Parser;
use fleetd::bootstrap::AdminBootstrap;
use fleetd::cli::{Cli, Command};

const EXIT_CONFIG: u8 = 64;

/// jemalloc for every allocation of the process, SQLite's included (its `malloc` replaces
/// the C library's): glibc kept what short bursts freed (password hashes at 19 MiB each,
/// batch and frame buffers) in its per-thread arenas for good, and mimalloc held three times
/// what was in use; jemalloc gives freed pages back after a few seconds (measured by the
/// soak; ARCHITECTURE.md "Memory").
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_CONFIG } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let log = std::env::var("FLEET_LOG").unwrap_or_else(|_| "info".to_owned());
    fleetd::observability::init_logging(&log, std::env::var("FLEET_LOG_JSON").is_ok_and(|v| v == "1" || v == "true"));
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("fleetd: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if let Some(c) = fleetd::config::config_problem(&e) {
                eprintln!("fleetd: bad configuration: {c}");
                ExitCode::from(EXIT_CONFIG)
            } else {
                eprintln!("fleetd: {e:#}");
                ExitCode::from(1)
            }
        }
    }
}

/// A line on stdout for whoever started fleetd (the listeners it bound, the admin password).
/// A write to a stdout nobody reads any more must not stop a running fleetd (`println!`
/// would panic on the closed pipe), so a failed write is ignored.
fn say(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_fmt(line).and_then(|()| out.write_all(b"\n")).and_then(|()| out.flush());
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Run(args) => {
            let settings = args.settings()?;
            let app = fleetd::App::start(settings).await?;
            match app.admin_bootstrap() {
                AdminBootstrap::Generated(p) => {
                    say(format_args!("created user admin with password {p} (shown once; change it)"))
                }
                AdminBootstrap::Created => say(format_args!("created user admin")),
                AdminBootstrap::Existing => {}
            }
            if let (true, Some(addr)) = (app.embedded_broker(), app.mqtt_addr()) {
                say(format_args!("mqtt broker listening on {addr}"));
            }
            say(format_args!("http listening on http://{}", app.http_addr()));
            if let Some(addr) = app.metrics_addr() {
                say(format_args!("metrics listening on http://{addr}/metrics"));
            }
            if let Some(addr) = app.gbt32960_addr() {
                say(format_args!("gbt32960 listening on {addr}"));
            }
            if let Some(addr) = app.jt808_addr() {
                say(format_args!("jt808 listening on {addr}"));
            }
            // Runs until a signal asks for a stop or a service ends by itself.
            let token = app.shutdown_token();
            let stopped = app.wait();
            tokio::pin!(stopped);
            tokio::select! {
                () = wait_for_signal() => {
                    tracing::info!("shutting down");
                    token.cancel();
                    stopped.await?;
                }
                ended = &mut stopped => ended?,
            }
            Ok(())
        }
        Command::Migrate(args) => {
            fleetd::config::check_database_url(args.database_url.expose())?;
            let store = fleet_storage::Store::connect(args.database_url.expose()).await?;
            store.migrate().await?;
            println!("database migrated");
            Ok(())
        }
        Command::Simulate(args) => fleetd::simulate_cmd::run(args).await,
        Command::Bench(args) => fleet_bench::run(args).await,
        Command::MqttPasswd(args) => fleetd::mqtt_passwd::run(args).await,
    }
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
