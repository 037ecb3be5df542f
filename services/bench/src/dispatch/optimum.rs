//! Exact optima to judge the engine's batches by, sharing nothing with its solver.

use std::collections::VecDeque;

use fleet_dispatch::CostMatrix;

/// Maximum-cardinality minimum-cost matching as a min-cost flow: source → every order →
/// feasible car → sink, unit capacities, augmented one unit at a time along a cheapest path
/// found by Bellman–Ford with a FIFO queue (residual arcs carry negative costs; no potentials
/// are kept). Successive shortest paths give a cheapest flow of every size, so the last is a
/// cheapest maximum one. Returns (pairs, total cost).
pub(super) fn min_cost_flow(costs: &CostMatrix) -> (usize, u64) {
    struct Arc {
        to: usize,
        cap: i32,
        cost: i64,
    }
    let (n, m) = (costs.rows(), costs.cols());
    let (source, sink) = (n + m, n + m + 1);
    let nodes = n + m + 2;
    let mut arcs: Vec<Arc> = Vec::new();
    let mut out: Vec<Vec<usize>> = vec![Vec::new(); nodes];
    let mut add = |arcs: &mut Vec<Arc>, from: usize, to: usize, cost: i64| {
        out[from].push(arcs.len());
        arcs.push(Arc { to, cap: 1, cost });
        out[to].push(arcs.len());
        arcs.push(Arc { to: from, cap: 0, cost: -cost });
    };
    for r in 0..n {
        add(&mut arcs, source, r, 0);
        for c in 0..m {
            if let Some(x) = costs.get(r, c) {
                add(&mut arcs, r, n + c, i64::from(x));
            }
        }
    }
    for c in 0..m {
        add(&mut arcs, n + c, sink, 0);
    }
    let (mut flow, mut total) = (0usize, 0i64);
    loop {
        let mut dist = vec![i64::MAX; nodes];
        let mut via = vec![usize::MAX; nodes];
        let mut queued = vec![false; nodes];
        let mut queue = VecDeque::from([source]);
        dist[source] = 0;
        while let Some(x) = queue.pop_front() {
            queued[x] = false;
            for &a in &out[x] {
                let arc = &arcs[a];
                if arc.cap > 0 && dist[x] + arc.cost < dist[arc.to] {
                    dist[arc.to] = dist[x] + arc.cost;
                    via[arc.to] = a;
                    if !queued[arc.to] {
                        queued[arc.to] = true;
                        queue.push_back(arc.to);
                    }
                }
            }
        }
        if dist[sink] == i64::MAX {
            break;
        }
        let mut x = sink;
        while x != source {
            let a = via[x];
            arcs[a].cap -= 1;
            arcs[a ^ 1].cap += 1;
            x = arcs[a ^ 1].to;
        }
        flow += 1;
        total += dist[sink];
    }
    (flow, u64::try_from(total).unwrap_or(0))
}

/// Exhaustive dynamic program over subsets of orders: cars one by one, each unused or given to
/// an order not yet served; best (most pairs, least cost) per set of served orders.
pub(super) fn subset_dp(costs: &CostMatrix) -> (usize, u64) {
    let n = costs.rows();
    let full = 1usize << n;
    let mut best: Vec<Option<u64>> = vec![None; full];
    best[0] = Some(0);
    for c in 0..costs.cols() {
        let prev = best.clone();
        for (mask, value) in prev.iter().enumerate() {
            let Some(v) = *value else { continue };
            for r in 0..n {
                if mask & (1 << r) == 0
                    && let Some(x) = costs.get(r, c)
                {
                    let slot = &mut best[mask | (1 << r)];
                    let cand = v + u64::from(x);
                    if slot.is_none_or(|s| cand < s) {
                        *slot = Some(cand);
                    }
                }
            }
        }
    }
    best.iter()
        .enumerate()
        .filter_map(|(mask, v)| v.map(|v| (mask.count_ones() as usize, v)))
        .max_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)))
        .unwrap_or((0, 0))
}
#[cfg(test)]
mod tests {
    use fleet_dispatch::{CostMatrix, solve};

    use super::*;

    #[test]
    fn the_independent_optima_agree_with_each_other_on_a_hand_case() {
        let m = CostMatrix::from_fn(3, 2, |r, c| [[Some(5), Some(1)], [Some(2), None], [None, Some(3)]][r][c]);
        // Two pairs at most: (0,1)+(1,0) = 3 is the cheapest.
        assert_eq!(min_cost_flow(&m), (2, 3));
        assert_eq!(subset_dp(&m), (2, 3));
        assert_eq!(solve(&m).unwrap().cost, 3);
    }
}
