//! `fleetd bench dispatch`: the matching engine against its baselines, in one run.
//!
//! - (a) single order: nearest feasible car through the H3 index with 100,000 available cars,
//!   latency p50/p99, against a linear scan of every car (which also checks the index's
//!   answer is the nearest feasible one).
//! - (b) batch quality on random rush-hour batches (10×15, 30×30, 200×300 orders × cars):
//!   total pickup distance of the engine, of first-come-nearest greedy, and of an independent
//!   exact optimum over the same feasible pairs: a min-cost flow by successive shortest paths
//!   with a Bellman–Ford queue (no duals, no Dijkstra, so nothing shared with the engine's
//!   solver), and for 10×15 also a dynamic program over subsets of orders.
//! - (c) a 1,000 × 5,000 batch end to end (feasible pairs, cost matrix, solve): median and max.
//! - (d) order due → driver notified, p99, through a `fleetd run` child with cars on MQTT and
//!   drivers on the live feed ([`notify`]).
//!
//! (a)–(c) are pure computation: no database or broker; (d) runs on the configured ones.
//! `--part` picks some. Positions are drawn around Zhoushan's towns (Dinghai, Lincheng,
//! Shenjiamen on the main island; Daishan, Zhujiajian, Putuoshan, Jintang).

mod notify;
mod optimum;
mod workload;

use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Args, ValueEnum};
use fleet_dispatch::{CarIndex, NoPick, assign_greedy, assign_optimal, feasible_pairs, pick_nearest, solve};
use fleet_domain::feasibility::{CarFacts, DispatchParams, GeoPoint, OrderFacts, check};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use self::optimum::{min_cost_flow, subset_dp};
use self::workload::{available_car, batch, dropoff, passengers, rush_pickup};
use super::progress;

#[derive(Debug, Clone, Args)]
pub struct DispatchArgs {
    /// Seed of every random instance (same seed, same instances).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Random batches per quality case, and timed runs of the 1,000 × 5,000 batch.
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// Available cars in the index for the single-order case.
    #[arg(long, default_value_t = 100_000)]
    pub cars: usize,
    /// Single-order searches timed.
    #[arg(long, default_value_t = 10_000)]
    pub queries: usize,
    /// Of those, how many are checked against a linear scan of every car.
    #[arg(long, default_value_t = 500)]
    pub verify_queries: usize,
    /// Parts to run (comma-separated); all by default.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "a,b,c,d")]
    pub part: Vec<Part>,
    #[command(flatten)]
    pub notify: notify::NotifyArgs,
}

/// A part of the bench, as the issue names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Part {
    /// Single-order search latency with 100,000 cars.
    A,
    /// Batch quality against greedy and an independent optimum.
    B,
    /// A 1,000 × 5,000 batch's time.
    C,
    /// Order due → driver notified, through a running fleetd.
    D,
}

/// The p-th percentile (0–100) of sorted samples, nearest rank.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Rounds to `decimals` places for the figures.
fn round_to(x: f64, decimals: i32) -> f64 {
    let f = 10f64.powi(decimals);
    (x * f).round() / f
}

fn us(d: Duration) -> f64 {
    round_to(d.as_secs_f64() * 1e6, 1)
}

fn ms(d: Duration) -> f64 {
    round_to(d.as_secs_f64() * 1e3, 2)
}

pub(crate) async fn run(args: DispatchArgs) -> anyhow::Result<Value> {
    let engine = args.clone();
    let mut out =
        tokio::task::spawn_blocking(move || measure(&engine)).await.context("the dispatch bench panicked")??;
    if args.part.contains(&Part::D) {
        notify::run(&args.notify, args.seed, &mut out).await?;
    }
    Ok(Value::Object(out))
}

/// Parts (a)–(c): the engine alone.
fn measure(args: &DispatchArgs) -> anyhow::Result<serde_json::Map<String, Value>> {
    let mut out = serde_json::Map::new();
    if args.part.contains(&Part::A) {
        single(args, &mut out)?;
    }
    if args.part.contains(&Part::B) {
        for (orders, cars) in [(10, 15), (30, 30), (200, 300)] {
            quality(args, orders, cars, &mut out)?;
        }
        out.insert(
            "dispatch.optimum_method".into(),
            json!(
                "min-cost flow, successive shortest paths with a Bellman-Ford queue; 10x15 also a DP over order subsets"
            ),
        );
    }
    if args.part.contains(&Part::C) {
        large(args, &mut out)?;
    }
    // Timings are wall-clock on a machine that may be shared: say how busy it was.
    if let Some(load) =
        std::fs::read_to_string("/proc/loadavg").ok().and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
    {
        out.insert("dispatch.machine_load_1m".into(), json!(load));
    }
    out.insert("dispatch.cpus".into(), json!(std::thread::available_parallelism().map_or(1, usize::from)));
    out.insert("dispatch.seed".into(), json!(args.seed));
    out.insert("dispatch.runs".into(), json!(args.runs));
    Ok(out)
}

/// (a) Single-order search and pick with `args.cars` cars indexed.
fn single(args: &DispatchArgs, out: &mut serde_json::Map<String, Value>) -> anyhow::Result<()> {
    let mut rng = StdRng::seed_from_u64(args.seed);
    let params = DispatchParams::default();
    progress(format!("dispatch (a): indexing {} available cars", args.cars));
    let facts: Vec<CarFacts> = (0..args.cars).map(|_| available_car(&mut rng)).collect();
    let started = Instant::now();
    let mut index = CarIndex::new();
    for (i, f) in facts.iter().enumerate() {
        index.upsert(i, f.position)?;
    }
    let build = started.elapsed();

    // Positions arrive: move a tenth of the fleet by up to a few hundred metres.
    let moves = args.cars / 10;
    let mut facts = facts;
    let started = Instant::now();
    for _ in 0..moves {
        let i = rng.random_range(0..facts.len());
        let p = facts[i].position;
        let q = GeoPoint::new(p.lat + rng.random_range(-0.003..0.003), p.lon + rng.random_range(-0.003..0.003));
        facts[i].position = q;
        index.upsert(i, q)?;
    }
    let move_mean = started.elapsed() / u32::try_from(moves.max(1)).unwrap_or(u32::MAX);

    progress(format!("dispatch (a): {} single-order picks", args.queries));
    let mut times = Vec::with_capacity(args.queries);
    let mut linear_times = Vec::new();
    let (mut agree, mut checked, mut waited) = (true, 0usize, 0usize);
    for q in 0..args.queries {
        let order =
            OrderFacts { pickup: rush_pickup(&mut rng), dropoff: dropoff(&mut rng), passengers: passengers(&mut rng) };
        let started = Instant::now();
        let pick = pick_nearest(&index, &params, &order, &[], |&i| facts.get(i).copied());
        times.push(started.elapsed());
        let pick = match pick {
            Ok(p) => Some(p),
            Err(NoPick::Waits(_)) => {
                waited += 1;
                None
            }
            Err(e) => return Err(e.into()),
        };
        if q < args.verify_queries {
            let started = Instant::now();
            let best =
                facts.iter().filter_map(|f| check(&params, f, &order).ok()).map(|f| f.pickup_m).min_by(f64::total_cmp);
            linear_times.push(started.elapsed());
            checked += 1;
            agree &= best == pick.map(|p| p.feasible.pickup_m);
        }
    }
    times.sort();
    linear_times.sort();
    let (p50, p99) = (percentile(&times, 50.0), percentile(&times, 99.0));
    let linear_p50 = percentile(&linear_times, 50.0);
    progress(format!(
        "dispatch (a): p50 {} µs, p99 {} µs, linear scan p50 {} µs; {checked} checked, {waited} waited",
        us(p50),
        us(p99),
        us(linear_p50)
    ));
    out.insert("dispatch.single_cars".into(), json!(args.cars));
    out.insert("dispatch.single_queries".into(), json!(args.queries));
    out.insert("dispatch.single_index_build_ms".into(), json!(ms(build)));
    out.insert("dispatch.single_index_move_mean_us".into(), json!(us(move_mean)));
    out.insert("dispatch.single_p50_us".into(), json!(us(p50)));
    out.insert("dispatch.single_p99_us".into(), json!(us(p99)));
    out.insert("dispatch.single_max_us".into(), json!(us(times.last().copied().unwrap_or_default())));
    out.insert("dispatch.single_linear_scan_p50_us".into(), json!(us(linear_p50)));
    out.insert(
        "dispatch.single_speedup_over_linear_scan_ratio".into(),
        json!(round_to(linear_p50.as_secs_f64() / p50.as_secs_f64().max(1e-9), 1)),
    );
    out.insert("dispatch.single_equals_linear_scan".into(), json!(agree));
    out.insert("dispatch.single_waited".into(), json!(waited));
    Ok(())
}

/// (b) Engine vs greedy vs an independent optimum on `args.runs` random rush-hour batches.
fn quality(
    args: &DispatchArgs,
    n_orders: usize,
    n_cars: usize,
    out: &mut serde_json::Map<String, Value>,
) -> anyhow::Result<()> {
    let params = DispatchParams::default();
    let mut rng = StdRng::seed_from_u64(args.seed ^ ((n_orders as u64) << 32 | n_cars as u64));
    let (mut engine_m, mut greedy_m, mut optimum_m) = (0u64, 0u64, 0u64);
    let (mut engine_n, mut greedy_n, mut optimum_n) = (0usize, 0usize, 0usize);
    let mut equal = true;
    for _ in 0..args.runs.max(1) {
        let (orders, cars) = batch(&mut rng, n_orders, n_cars);
        let engine = assign_optimal(&params, &orders, &cars)?;
        let greedy = assign_greedy(&params, &orders, &cars);
        let pairs = feasible_pairs(&params, &orders, &cars);
        let (flow_n, flow_m) = min_cost_flow(&pairs.costs);
        if n_orders <= 16 {
            let dp = subset_dp(&pairs.costs);
            anyhow::ensure!(
                dp == (flow_n, flow_m),
                "the two exact methods disagree: DP {dp:?}, flow {:?}",
                (flow_n, flow_m)
            );
        }
        equal &= (engine.matches.len(), engine.total_pickup_m) == (flow_n, flow_m);
        engine_m += engine.total_pickup_m;
        greedy_m += greedy.total_pickup_m;
        optimum_m += flow_m;
        engine_n += engine.matches.len();
        greedy_n += greedy.matches.len();
        optimum_n += flow_n;
    }
    let case = format!("batch_{n_orders}x{n_cars}");
    let gain = if greedy_m > 0 { 1.0 - engine_m as f64 / greedy_m as f64 } else { 0.0 };
    progress(format!(
        "dispatch (b) {case}: engine {engine_m} m ({engine_n} matched), greedy {greedy_m} m ({greedy_n}), optimum {optimum_m} m ({optimum_n})"
    ));
    out.insert(format!("dispatch.{case}_engine_m"), json!(engine_m));
    out.insert(format!("dispatch.{case}_greedy_m"), json!(greedy_m));
    out.insert(format!("dispatch.{case}_optimum_m"), json!(optimum_m));
    out.insert(format!("dispatch.{case}_gain_over_greedy_ratio"), json!(round_to(gain, 4)));
    out.insert(format!("dispatch.{case}_equals_optimum"), json!(equal));
    out.insert(format!("dispatch.{case}_engine_matched"), json!(engine_n));
    out.insert(format!("dispatch.{case}_greedy_matched"), json!(greedy_n));
    out.insert(format!("dispatch.{case}_optimum_matched"), json!(optimum_n));
    Ok(())
}

/// (c) A 1,000 × 5,000 batch end to end, `args.runs` times.
fn large(args: &DispatchArgs, out: &mut serde_json::Map<String, Value>) -> anyhow::Result<()> {
    let params = DispatchParams::default();
    let mut rng = StdRng::seed_from_u64(args.seed.wrapping_add(1000));
    let (orders, cars) = batch(&mut rng, 1000, 5000);
    let (mut total, mut pairs_t, mut solve_t) = (Vec::new(), Vec::new(), Vec::new());
    let mut matched = 0;
    for run in 0..args.runs.max(1) {
        let started = Instant::now();
        let outcome = assign_optimal(&params, &orders, &cars)?;
        total.push(started.elapsed());
        matched = outcome.matches.len();
        // The two stages apart, for the record.
        let started = Instant::now();
        let pairs = feasible_pairs(&params, &orders, &cars);
        pairs_t.push(started.elapsed());
        let started = Instant::now();
        let a = solve(&pairs.costs)?;
        solve_t.push(started.elapsed());
        anyhow::ensure!(a.cost == outcome.total_pickup_m, "the staged solve disagrees with the batch");
        progress(format!("dispatch (c) batch_1000x5000 run {}: {} ms", run + 1, ms(total[run])));
    }
    let started = Instant::now();
    let greedy = assign_greedy(&params, &orders, &cars);
    let greedy_t = started.elapsed();
    for v in [&mut total, &mut pairs_t, &mut solve_t] {
        v.sort();
    }
    let engine_m = solve(&feasible_pairs(&params, &orders, &cars).costs)?.cost;
    out.insert("dispatch.batch_1000x5000_ms".into(), json!(ms(percentile(&total, 50.0))));
    out.insert("dispatch.batch_1000x5000_max_ms".into(), json!(ms(*total.last().expect("at least one run"))));
    out.insert("dispatch.batch_1000x5000_pairs_ms".into(), json!(ms(percentile(&pairs_t, 50.0))));
    out.insert("dispatch.batch_1000x5000_solve_ms".into(), json!(ms(percentile(&solve_t, 50.0))));
    out.insert("dispatch.batch_1000x5000_greedy_ms".into(), json!(ms(greedy_t)));
    out.insert("dispatch.batch_1000x5000_matched".into(), json!(matched));
    out.insert("dispatch.batch_1000x5000_engine_m".into(), json!(engine_m));
    out.insert("dispatch.batch_1000x5000_greedy_m".into(), json!(greedy.total_pickup_m));
    out.insert("dispatch.batch_1000x5000_greedy_matched".into(), json!(greedy.matches.len()));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_micros).collect();
        assert_eq!(percentile(&v, 50.0), Duration::from_micros(50));
        assert_eq!(percentile(&v, 99.0), Duration::from_micros(99));
        assert_eq!(percentile(&[], 99.0), Duration::ZERO);
    }
}
