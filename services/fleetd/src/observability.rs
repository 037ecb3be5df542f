//! Logs (tracing) and metrics (Prometheus) for the whole process.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Installs the log subscriber: human-readable text, or JSON lines for log collectors.
/// `filter` is an env-filter directive such as `info` or `fleet_ingest=debug,info`. The
/// embedded broker's own logs are off unless asked for (`rumqttd=info`): it reports every
/// ordinary client disconnect as an error.
pub fn init_logging(filter: &str, json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_new(format!("rumqttd=off,sqlx=warn,{filter}"))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if json {
        let _ = builder.json().try_init();
    } else {
        let _ = builder.try_init();
    }
}

static PROMETHEUS: OnceLock<PrometheusHandle> = OnceLock::new();

/// How often the recorder's histograms are drained into their summaries. Without it they
/// keep every value recorded between two scrapes of `/metrics`, so an instance nobody
/// scrapes would grow without bound.
pub const METRICS_UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Runs the recorder's upkeep every [`METRICS_UPKEEP_EVERY`] until `shutdown`.
pub async fn metrics_upkeep(handle: PrometheusHandle, shutdown: tokio_util::sync::CancellationToken) {
    let mut tick = tokio::time::interval(METRICS_UPKEEP_EVERY);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {
                handle.run_upkeep();
                allocator_gauges();
            }
        }
    }
}

/// Publishes jemalloc's own account of the heap as gauges, so that RSS can be told apart:
/// `allocated` is what the program holds, `active` the pages holding it, `resident` what
/// the allocator keeps in RAM (active plus freed pages not yet given back, plus metadata),
/// `retained` address space given back but kept mapped.
fn allocator_gauges() {
    use tikv_jemalloc_ctl::{epoch, stats};
    // jemalloc's statistics are a snapshot taken when the epoch advances.
    if epoch::advance().is_err() {
        return;
    }
    let figures = [
        ("fleet_memory_heap_allocated_bytes", stats::allocated::read()),
        ("fleet_memory_heap_active_bytes", stats::active::read()),
        ("fleet_memory_heap_resident_bytes", stats::resident::read()),
        ("fleet_memory_heap_metadata_bytes", stats::metadata::read()),
        ("fleet_memory_heap_retained_bytes", stats::retained::read()),
    ];
    for (name, value) in figures {
        if let Ok(v) = value {
            metrics::gauge!(name).set(v as f64);
        }
    }
}

/// The process-wide metrics recorder (installed on first use; every `App` in the process
/// shares it, as the tests start several).
pub fn prometheus() -> PrometheusHandle {
    PROMETHEUS
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            // Fails only if another recorder was installed first; then our handle renders
            // nothing, which `/metrics` shows as an empty page rather than a crash.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}
