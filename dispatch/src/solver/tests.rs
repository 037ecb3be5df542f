use super::*;
use proptest::prelude::*;

fn matrix(rows: &[&[Option<u32>]]) -> CostMatrix {
    let cols = rows.first().map_or(0, |r| r.len());
    CostMatrix::from_fn(rows.len(), cols, |r, c| rows[r][c])
}

/// Every partial injective assignment, best by (most pairs, least cost).
fn brute_force(m: &CostMatrix) -> (usize, u64) {
    fn go(m: &CostMatrix, row: usize, used: &mut Vec<bool>, count: usize, cost: u64, best: &mut (usize, u64)) {
        if row == m.rows() {
            if count > best.0 || (count == best.0 && cost < best.1) {
                *best = (count, cost);
            }
            return;
        }
        go(m, row + 1, used, count, cost, best);
        for c in 0..m.cols() {
            if let (false, Some(x)) = (used[c], m.get(row, c)) {
                used[c] = true;
                go(m, row + 1, used, count + 1, cost + u64::from(x), best);
                used[c] = false;
            }
        }
    }
    let mut best = (0, 0);
    go(m, 0, &mut vec![false; m.cols()], 0, 0, &mut best);
    best
}

/// The assignment is one: allowed pairs, no column twice, totals that add up.
fn assert_valid(m: &CostMatrix, a: &Assignment) {
    assert_eq!(a.row_to_col.len(), m.rows());
    let mut used = vec![false; m.cols()];
    let mut cost = 0;
    for (r, c) in a.pairs() {
        assert!(!used[c], "column {c} assigned twice");
        used[c] = true;
        cost += u64::from(m.get(r, c).expect("an assigned pair is allowed"));
    }
    assert_eq!((a.pairs().count(), cost), (a.matched, a.cost));
}

#[test]
fn solves_a_square_textbook_case() {
    let m = matrix(&[&[Some(4), Some(1), Some(3)], &[Some(2), Some(0), Some(5)], &[Some(3), Some(2), Some(2)]]);
    let a = solve(&m).unwrap();
    assert_valid(&m, &a);
    assert_eq!((a.matched, a.cost), (3, 5));
    assert_eq!(a.row_to_col, vec![Some(1), Some(0), Some(2)]);
}

#[test]
fn prefers_more_pairs_over_cheaper_ones() {
    // Row 0 alone is cheapest at column 0, but then row 1 gets nothing.
    let m = matrix(&[&[Some(1), Some(100)], &[Some(1), None]]);
    let a = solve(&m).unwrap();
    assert_eq!((a.matched, a.cost, a.row_to_col.clone()), (2, 101, vec![Some(1), Some(0)]));
}

#[test]
fn among_maximum_matchings_takes_the_cheapest_even_if_another_row_loses() {
    // Both rows want the only column; the cheaper one gets it, whatever the row order.
    let m = matrix(&[&[Some(10)], &[Some(1)]]);
    let a = solve(&m).unwrap();
    assert_eq!((a.matched, a.cost, a.row_to_col.clone()), (1, 1, vec![None, Some(0)]));
    let m = matrix(&[&[Some(10), None], &[Some(1), None]]);
    assert_eq!(solve(&m).unwrap().row_to_col, vec![None, Some(0)]);
}

#[test]
fn empty_and_all_forbidden_instances_assign_nothing() {
    for (r, c) in [(0, 0), (0, 5), (5, 0)] {
        let a = solve(&CostMatrix::new(r, c)).unwrap();
        assert_eq!((a.matched, a.cost, a.row_to_col.len()), (0, 0, r));
    }
    let a = solve(&CostMatrix::new(3, 4)).unwrap();
    assert_eq!((a.matched, a.row_to_col.clone()), (0, vec![None; 3]));
}

#[test]
fn one_row_takes_its_cheapest_column_and_one_column_its_cheapest_row() {
    let row = CostMatrix::from_fn(1, 6, |_, c| (c != 4).then_some([9, 7, 8, 7, 1, 3][c]));
    let a = solve(&row).unwrap();
    assert_eq!((a.row_to_col.clone(), a.cost), (vec![Some(5)], 3));
    let col = CostMatrix::from_fn(6, 1, |r, _| (r != 4).then_some([9, 7, 8, 7, 1, 3][r]));
    let a = solve(&col).unwrap();
    assert_eq!(a.cost, 3);
    assert_eq!(a.row_to_col, vec![None, None, None, None, None, Some(0)]);
}

#[test]
fn handles_the_largest_costs_and_zero_costs() {
    let m = matrix(&[&[Some(MAX_COST), Some(0)], &[Some(0), Some(MAX_COST)]]);
    assert_eq!(solve(&m).unwrap().cost, 0);
    let m = matrix(&[&[Some(MAX_COST), None], &[Some(MAX_COST), Some(MAX_COST)]]);
    assert_eq!(solve(&m).unwrap().cost, 2 * u64::from(MAX_COST));
    let mut m = CostMatrix::new(2, 2);
    m.set(0, 1, Some(u32::MAX));
    assert_eq!(m.get(0, 1), Some(MAX_COST), "clamped");
    assert_eq!(m.get(1, 1), None);
}

#[test]
fn ties_are_resolved_to_a_valid_optimum() {
    let m = CostMatrix::from_fn(5, 5, |_, _| Some(7));
    let a = solve(&m).unwrap();
    assert_valid(&m, &a);
    assert_eq!((a.matched, a.cost), (5, 35));
}

fn instance() -> impl Strategy<Value = CostMatrix> {
    (0usize..=7, 0usize..=7, 0u32..=3).prop_flat_map(|(rows, cols, cost_bits)| {
        // Small cost ranges make many ties; forbidden about a third of the time.
        let max = [1u32, 10, 1000, MAX_COST][cost_bits as usize];
        proptest::collection::vec(prop_oneof![1 => Just(None), 2 => (0..=max).prop_map(Some)], rows * cols)
            .prop_map(move |cells| CostMatrix::from_fn(rows, cols, |r, c| cells[r * cols + c]))
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn equals_brute_force_on_small_instances(m in instance(), first in 0usize..4) {
        // Short first lists make searches grow them and fall back to dense scans.
        let a = solve_with(&m, [FIRST_CANDIDATES, 1, 2, 3][first]).unwrap();
        assert_valid(&m, &a);
        prop_assert_eq!((a.matched, a.cost), brute_force(&m));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn equals_the_dense_search_on_larger_spatial_instances(
        points in proptest::collection::vec((0u32..2000, 0u32..2000), 60..120),
        rows in 10usize..50,
        forbid in 0u32..4,
    ) {
        // Rows and columns are points in a 2 km square, cost the Manhattan distance,
        // some pairs forbidden: the shape dispatch produces. Lists of 1 grow many times.
        let (orders, cars) = points.split_at(rows.min(points.len() / 2));
        let m = CostMatrix::from_fn(orders.len(), cars.len(), |r, c| {
            let (a, b) = (orders[r], cars[c]);
            let d = a.0.abs_diff(b.0) + a.1.abs_diff(b.1);
            ((a.0 + b.1 + forbid) % 7 != 0 || forbid == 0).then_some(d)
        });
        let sparse = solve_with(&m, 1).unwrap();
        let dense = solve_with(&m, usize::MAX / 8).unwrap();
        assert_valid(&m, &sparse);
        assert_valid(&m, &dense);
        prop_assert_eq!((sparse.matched, sparse.cost), (dense.matched, dense.cost));
        let t = solve_with(&m.transposed(), 1).unwrap();
        prop_assert_eq!((t.matched, t.cost), (dense.matched, dense.cost));
    }
}
