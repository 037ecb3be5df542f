//! Exact minimum-cost rectangular assignment with forbidden pairs.
//!
//! The method is the shortest augmenting path form of the Hungarian method as laid out by
//! Jonker & Volgenant (1987, "A shortest augmenting path algorithm for dense and sparse linear
//! assignment problems") and, for the rectangular case, by Crouse (2016, "On implementing 2D
//! rectangular assignment algorithms", IEEE TAES 52(4), Algorithm 1): one row at a time,
//! a Dijkstra search over reduced costs finds the cheapest alternating path to a free
//! column, the dual variables are updated so reduced costs stay non-negative, and the path
//! is flipped. O(n²m) for n ≤ m in the worst case; on spatial instances most rows find a
//! free column on their first scan.
//!
//! Forbidden pairs take a cost `BIG` larger than any sum of allowed costs, and the solver
//! assigns every row of the smaller side (a complete assignment always exists when n ≤ m).
//! The optimum then uses as few forbidden pairs as possible and, among those, is the
//! cheapest; dropping its forbidden pairs leaves a maximum-cardinality matching of minimum
//! cost. (Rows that merely cannot augment are not skipped: skipping would keep the
//! cardinality maximal but not the cost minimal.)

/// Largest allowed pair cost.
pub const MAX_COST: u32 = u32::MAX - 1;

/// Stored in place of a cost for a forbidden pair.
const FORBIDDEN: u32 = u32::MAX;

/// A dense rows × cols matrix of pair costs, some pairs forbidden.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CostMatrix {
    rows: usize,
    cols: usize,
    cells: Vec<u32>,
}

impl CostMatrix {
    /// A matrix with every pair forbidden.
    pub fn new(rows: usize, cols: usize) -> Self {
        Self { rows, cols, cells: vec![FORBIDDEN; rows * cols] }
    }

    /// A matrix from a cost function; `None` forbids the pair. Costs above [`MAX_COST`] are
    /// clamped to it.
    pub fn from_fn(rows: usize, cols: usize, mut cost: impl FnMut(usize, usize) -> Option<u32>) -> Self {
        let mut cells = Vec::with_capacity(rows * cols);
        for r in 0..rows {
            for c in 0..cols {
                cells.push(cost(r, c).map_or(FORBIDDEN, |x| x.min(MAX_COST)));
            }
        }
        Self { rows, cols, cells }
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The cost of a pair, `None` if forbidden.
    ///
    /// # Panics
    /// If the pair is outside the matrix.
    pub fn get(&self, row: usize, col: usize) -> Option<u32> {
        assert!(row < self.rows && col < self.cols, "pair ({row}, {col}) outside a {}×{} matrix", self.rows, self.cols);
        let x = self.cells[row * self.cols + col];
        (x != FORBIDDEN).then_some(x)
    }

    /// Sets the cost of a pair; `None` forbids it. Costs above [`MAX_COST`] are clamped.
    ///
    /// # Panics
    /// If the pair is outside the matrix.
    pub fn set(&mut self, row: usize, col: usize, cost: Option<u32>) {
        assert!(row < self.rows && col < self.cols, "pair ({row}, {col}) outside a {}×{} matrix", self.rows, self.cols);
        self.cells[row * self.cols + col] = cost.map_or(FORBIDDEN, |x| x.min(MAX_COST));
    }

    /// Sets every cost of one row from a function of the column; `None` forbids the pair.
    /// Costs above [`MAX_COST`] are clamped.
    ///
    /// # Panics
    /// If the row is outside the matrix.
    pub fn fill_row(&mut self, row: usize, mut cost: impl FnMut(usize) -> Option<u32>) {
        assert!(row < self.rows, "row {row} outside a {}×{} matrix", self.rows, self.cols);
        let cells = &mut self.cells[row * self.cols..(row + 1) * self.cols];
        for (c, cell) in cells.iter_mut().enumerate() {
            *cell = cost(c).map_or(FORBIDDEN, |x| x.min(MAX_COST));
        }
    }

    fn transposed(&self) -> Self {
        let mut cells = Vec::with_capacity(self.cells.len());
        for c in 0..self.cols {
            cells.extend((0..self.rows).map(|r| self.cells[r * self.cols + c]));
        }
        Self { rows: self.cols, cols: self.rows, cells }
    }
}

/// An optimal assignment: the most pairs possible, and of those the least total cost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    /// For each row, its column, if it got one.
    pub row_to_col: Vec<Option<usize>>,
    /// Number of assigned rows.
    pub matched: usize,
    /// Sum of the assigned pairs' costs.
    pub cost: u64,
}

impl Assignment {
    /// The assigned `(row, col)` pairs in row order.
    pub fn pairs(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.row_to_col.iter().enumerate().filter_map(|(r, c)| c.map(|c| (r, c)))
    }
}

/// The instance is so large that the solver's integers could overflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("assignment instance too large: {rows}×{cols} with costs up to {max_cost}")]
pub struct TooLarge {
    pub rows: usize,
    pub cols: usize,
    pub max_cost: u32,
}

/// Solves the assignment exactly: maximizes the number of assigned rows, then minimizes
/// the total cost. Either side may be the larger.
///
/// Fails only when `min(rows, cols)² × max_cost` approaches 2⁶⁰ (e.g. more than 10⁴ rows
/// and columns with costs over 10⁷); dispatch instances are far below.
pub fn solve(matrix: &CostMatrix) -> Result<Assignment, TooLarge> {
    if matrix.rows <= matrix.cols {
        return solve_wide(matrix);
    }
    let t = solve_wide(&matrix.transposed())?;
    let mut row_to_col = vec![None; matrix.rows];
    for (c, r) in t.pairs() {
        row_to_col[r] = Some(c);
    }
    Ok(Assignment { row_to_col, matched: t.matched, cost: t.cost })
}

const NONE: u32 = u32::MAX;

/// The shortest augmenting path method for `rows ≤ cols`.
fn solve_wide(m: &CostMatrix) -> Result<Assignment, TooLarge> {
    let (n, cols) = (m.rows, m.cols);
    debug_assert!(n <= cols);
    let max_cost = m.cells.iter().copied().filter(|&x| x != FORBIDDEN).max().unwrap_or(0);
    let too_large = TooLarge { rows: m.rows, cols: m.cols, max_cost };
    // BIG exceeds any total of allowed costs, so one forbidden pair fewer always wins.
    // Path lengths and duals stay within a few multiples of n × BIG; keep 16× headroom.
    let n64 = i64::try_from(n).map_err(|_| too_large)?;
    let big = n64.checked_mul(i64::from(max_cost)).and_then(|x| x.checked_add(1)).ok_or(too_large)?;
    n64.checked_add(1)
        .and_then(|x| x.checked_mul(big))
        .and_then(|x| x.checked_mul(16))
        .ok_or(too_large)?;
    if n > NONE as usize - 1 || cols > NONE as usize - 1 {
        return Err(too_large);
    }
    let inf = i64::MAX / 4;

    // Duals (u for rows, v for columns) and the matching.
    let mut u = vec![0i64; n];
    let mut v = vec![0i64; cols];
    let mut col4row = vec![NONE; n];
    let mut row4col = vec![NONE; cols];
    // Per-search state, reused.
    let mut shortest = vec![inf; cols];
    let mut path = vec![NONE; cols];
    let mut remaining: Vec<u32> = Vec::with_capacity(cols);
    let mut scanned_rows: Vec<u32> = Vec::with_capacity(n);
    let mut scanned_cols: Vec<u32> = Vec::with_capacity(cols);

    for cur_row in 0..n {
        shortest.fill(inf);
        remaining.clear();
        // Crouse scans columns in reverse order; any order is correct.
        remaining.extend((0..cols as u32).rev());
        scanned_rows.clear();
        scanned_cols.clear();

        let mut min_val = 0i64;
        let mut i = cur_row;
        let sink = loop {
            scanned_rows.push(i as u32);
            let row = &m.cells[i * cols..(i + 1) * cols];
            let base = min_val - u[i];
            let mut lowest = inf;
            let mut lowest_at = 0usize;
            let mut lowest_free = false;
            for (at, &j) in remaining.iter().enumerate() {
                let j = j as usize;
                let raw = row[j];
                let c = if raw == FORBIDDEN { big } else { i64::from(raw) };
                let r = base + c - v[j];
                if r < shortest[j] {
                    path[j] = i as u32;
                    shortest[j] = r;
                }
                let s = shortest[j];
                // Among equal distances prefer a free column: the search ends sooner.
                if s < lowest || (s == lowest && !lowest_free && row4col[j] == NONE) {
                    lowest = s;
                    lowest_at = at;
                    lowest_free = row4col[j] == NONE;
                }
            }
            min_val = lowest;
            let j = remaining.swap_remove(lowest_at) as usize;
            scanned_cols.push(j as u32);
            if row4col[j] == NONE {
                break j;
            }
            i = row4col[j] as usize;
        };

        // Dual update (Crouse 2016, Algorithm 1, step 3).
        u[cur_row] += min_val;
        for &r in &scanned_rows[1..] {
            let r = r as usize;
            u[r] += min_val - shortest[col4row[r] as usize];
        }
        for &c in &scanned_cols {
            let c = c as usize;
            v[c] -= min_val - shortest[c];
        }

        // Flip the alternating path back to cur_row.
        let mut j = sink;
        loop {
            let r = path[j] as usize;
            row4col[j] = r as u32;
            let prev = std::mem::replace(&mut col4row[r], j as u32);
            if r == cur_row {
                break;
            }
            j = prev as usize;
        }
    }

    let mut row_to_col = vec![None; n];
    let (mut matched, mut cost) = (0usize, 0u64);
    for (r, &c) in col4row.iter().enumerate() {
        let raw = m.cells[r * cols + c as usize];
        if raw != FORBIDDEN {
            row_to_col[r] = Some(c as usize);
            matched += 1;
            cost += u64::from(raw);
        }
    }
    Ok(Assignment { row_to_col, matched, cost })
}

#[cfg(test)]
mod tests {
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
        let m = matrix(&[
            &[Some(4), Some(1), Some(3)],
            &[Some(2), Some(0), Some(5)],
            &[Some(3), Some(2), Some(2)],
        ]);
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
        fn equals_brute_force_on_small_instances(m in instance()) {
            let a = solve(&m).unwrap();
            assert_valid(&m, &a);
            prop_assert_eq!((a.matched, a.cost), brute_force(&m));
        }
    }
}
