//! Exact minimum-cost rectangular assignment with forbidden pairs.
//!
//! The method is the shortest augmenting path form of the Hungarian method as laid out by
//! Jonker & Volgenant (1987, "A shortest augmenting path algorithm for dense and sparse linear
//! assignment problems") and, for the rectangular case, by Crouse (2016, "On implementing 2D
//! rectangular assignment algorithms", IEEE TAES 52(4), Algorithm 1): one row at a time,
//! a Dijkstra search over reduced costs finds the cheapest alternating path to a free
//! column, the dual variables are updated so reduced costs stay non-negative, and the path
//! is flipped.
//!
//! The searches are pruned (see `Sap`): a row's columns are visited cheapest first and only
//! while they could still beat the nearest free column found, with tentative distances in a
//! binary heap. Worst case O(n · m log m) per search, O(n² m log m) in all for n ≤ m (a
//! search that scans every row through every column); on dispatch's spatial instances a
//! search touches a few dozen columns, so building the per-row candidate lists, one pass
//! over each row, is most of the work.
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
    solve_with(matrix, FIRST_CANDIDATES)
}

fn solve_with(matrix: &CostMatrix, first_candidates: usize) -> Result<Assignment, TooLarge> {
    if matrix.rows <= matrix.cols {
        return solve_wide(matrix, first_candidates);
    }
    let t = solve_wide(&matrix.transposed(), first_candidates)?;
    let mut row_to_col = vec![None; matrix.rows];
    for (c, r) in t.pairs() {
        row_to_col[r] = Some(c);
    }
    Ok(Assignment { row_to_col, matched: t.matched, cost: t.cost })
}

const NONE: u32 = u32::MAX;

/// Cheapest columns listed per row before a row's first scan; lists grow 4× when a search
/// needs more.
const FIRST_CANDIDATES: usize = 16;

/// The shortest augmenting path method for `rows ≤ cols`.
fn solve_wide(m: &CostMatrix, first_candidates: usize) -> Result<Assignment, TooLarge> {
    let (n, cols) = (m.rows, m.cols);
    debug_assert!(n <= cols);
    let max_cost = m.cells.iter().copied().filter(|&x| x != FORBIDDEN).max().unwrap_or(0);
    let too_large = TooLarge { rows: m.rows, cols: m.cols, max_cost };
    // BIG exceeds any total of allowed costs, so one forbidden pair fewer always wins.
    // Path lengths and duals stay within a few multiples of n × BIG; keep 16× headroom.
    let n64 = i64::try_from(n).map_err(|_| too_large)?;
    let big = n64.checked_mul(i64::from(max_cost)).and_then(|x| x.checked_add(1)).ok_or(too_large)?;
    n64.checked_add(1).and_then(|x| x.checked_mul(big)).and_then(|x| x.checked_mul(16)).ok_or(too_large)?;
    if n >= NONE as usize || cols >= NONE as usize {
        return Err(too_large);
    }
    let mut sap = Sap::new(m, big, first_candidates);
    for cur_row in 0..n {
        sap.augment(cur_row);
    }

    let mut row_to_col = vec![None; n];
    let (mut matched, mut cost) = (0usize, 0u64);
    for (r, &c) in sap.col4row.iter().enumerate() {
        let raw = m.cells[r * cols + c as usize];
        if raw != FORBIDDEN {
            row_to_col[r] = Some(c as usize);
            matched += 1;
            cost += u64::from(raw);
        }
    }
    Ok(Assignment { row_to_col, matched, cost })
}

const INF: i64 = i64::MAX / 4;

/// The candidate columns of a row for the sparse part of a search.
#[derive(Debug, Clone, Default)]
struct Candidates {
    /// Allowed columns, cheapest first; `None` until the row is first scanned.
    cheapest: Option<Vec<(u32, u32)>>,
    /// `cheapest` holds every allowed column of the row.
    complete: bool,
    /// The list would be too long to pay off: scan the whole row instead.
    dense: bool,
}

/// A tentative distance in the search's priority queue; among equal distances a free
/// column comes first, so a search ends as soon as it can (Crouse 2016 does the same).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Queued {
    dist: i64,
    assigned: bool,
    col: u32,
}

/// The state of the shortest augmenting path method.
///
/// Each search is a Dijkstra over columns with reduced costs `c − u_i − v_j ≥ 0`. Two
/// things keep it from touching all `m` columns per scanned row:
///
/// - Column duals only decrease from 0 (`v_j ≤ 0`), so `min_val + c_ij − u_i` is a lower
///   bound on a column's tentative distance, and a row's columns in increasing cost give
///   increasing bounds. Once a bound reaches the best tentative distance of a free column,
///   no further column of the row can be on a shorter augmenting path: the scan stops.
///   (Distances of unscanned columns play no part in the dual update, so leaving them
///   unrelaxed changes nothing.)
/// - Each row keeps its cheapest allowed columns sorted, built on first use and grown 4×
///   when a scan runs past the end; a row whose list would exceed a quarter of the columns
///   is scanned densely, as is the forbidden remainder of a row when a search gets that far.
///
/// Tentative distances sit in a binary heap, so a search costs about
/// (columns relaxed) × log instead of (rows scanned) × m.
struct Sap<'a> {
    m: &'a CostMatrix,
    big: i64,
    first_candidates: usize,
    u: Vec<i64>,
    v: Vec<i64>,
    col4row: Vec<u32>,
    row4col: Vec<u32>,
    candidates: Vec<Candidates>,
    // Per search, reset through the lists of what was touched.
    shortest: Vec<i64>,
    path: Vec<u32>,
    scanned: Vec<bool>,
    touched: Vec<u32>,
    scanned_rows: Vec<u32>,
    scanned_cols: Vec<u32>,
    heap: std::collections::BinaryHeap<std::cmp::Reverse<Queued>>,
    /// Best tentative distance to a free column in this search.
    best_free: i64,
}

impl<'a> Sap<'a> {
    fn new(m: &'a CostMatrix, big: i64, first_candidates: usize) -> Self {
        let (n, cols) = (m.rows, m.cols);
        Self {
            m,
            big,
            first_candidates: first_candidates.max(1),
            u: vec![0; n],
            v: vec![0; cols],
            col4row: vec![NONE; n],
            row4col: vec![NONE; cols],
            candidates: vec![Candidates::default(); n],
            shortest: vec![INF; cols],
            path: vec![NONE; cols],
            scanned: vec![false; cols],
            touched: Vec::new(),
            scanned_rows: Vec::new(),
            scanned_cols: Vec::new(),
            heap: std::collections::BinaryHeap::new(),
            best_free: INF,
        }
    }

    fn row(&self, i: usize) -> &'a [u32] {
        let cols = self.m.cols;
        &self.m.cells[i * cols..(i + 1) * cols]
    }

    /// (Re)builds row `i`'s list with its `k` cheapest allowed columns.
    fn list_cheapest(&mut self, i: usize, k: usize) {
        if k.saturating_mul(4) >= self.m.cols {
            self.candidates[i] = Candidates { cheapest: Some(Vec::new()), complete: false, dense: true };
            return;
        }
        // One pass with a bounded max-heap: most columns lose a single comparison against
        // the k-th cheapest so far, so this costs little more than reading the row.
        // Columns come in increasing index, so comparing costs alone against the current
        // k-th cheapest decides the (cost, column) order; forbidden ones never pass.
        let row = self.row(i);
        let mut heap = std::collections::BinaryHeap::with_capacity(k);
        let mut worst = FORBIDDEN;
        for (j, &x) in row.iter().enumerate() {
            if x >= worst {
                continue;
            }
            if heap.len() < k {
                heap.push((x, j as u32));
                if heap.len() < k {
                    continue;
                }
            } else if let Some(mut top) = heap.peek_mut() {
                *top = (x, j as u32);
            }
            worst = heap.peek().map_or(FORBIDDEN, |t| t.0);
        }
        // Fewer than k allowed columns: the list has them all.
        let complete = heap.len() < k;
        self.candidates[i] = Candidates { cheapest: Some(heap.into_sorted_vec()), complete, dense: false };
    }

    /// Offers column `j` a path through row `i` of length `dist`.
    #[inline]
    fn relax(&mut self, i: usize, j: usize, dist: i64) {
        if self.scanned[j] || dist >= self.shortest[j] {
            return;
        }
        // A column no nearer than a free one already found cannot be on a shorter path.
        if dist >= self.best_free {
            return;
        }
        let free = self.row4col[j] == NONE;
        if self.shortest[j] == INF {
            self.touched.push(j as u32);
        }
        self.shortest[j] = dist;
        self.path[j] = i as u32;
        if free {
            self.best_free = dist;
        }
        self.heap.push(std::cmp::Reverse(Queued { dist, assigned: !free, col: j as u32 }));
    }

    /// Relaxes every column of row `i` that could still matter, `base = min_val − u_i`.
    fn scan_row(&mut self, i: usize, base: i64) {
        if self.candidates[i].cheapest.is_none() {
            self.list_cheapest(i, self.first_candidates);
        }
        loop {
            if self.candidates[i].dense {
                return self.scan_dense(i, base);
            }
            let list = self.candidates[i].cheapest.take().expect("listed above");
            let mut stopped = false;
            for &(c, j) in &list {
                let bound = base + i64::from(c);
                if bound >= self.best_free {
                    stopped = true;
                    break;
                }
                self.relax(i, j as usize, bound - self.v[j as usize]);
            }
            let len = list.len();
            self.candidates[i].cheapest = Some(list);
            if stopped {
                return;
            }
            if self.candidates[i].complete {
                // Only forbidden columns are left, all at cost BIG.
                if base + self.big < self.best_free {
                    self.scan_dense(i, base);
                }
                return;
            }
            // Ran past the list with the bound still below the best free column: list more.
            self.list_cheapest(i, len.max(1) * 4);
        }
    }

    fn scan_dense(&mut self, i: usize, base: i64) {
        let row = self.row(i);
        for (j, &raw) in row.iter().enumerate() {
            let c = if raw == FORBIDDEN { self.big } else { i64::from(raw) };
            let bound = base + c;
            if bound < self.best_free {
                self.relax(i, j, bound - self.v[j]);
            }
        }
    }

    /// Finds the shortest augmenting path from `cur_row`, updates the duals and flips it.
    fn augment(&mut self, cur_row: usize) {
        let mut min_val = 0i64;
        let mut i = cur_row;
        let sink = loop {
            self.scanned_rows.push(i as u32);
            self.scan_row(i, min_val - self.u[i]);
            // There is always a free column (rows ≤ columns) at a finite distance (BIG).
            let q = loop {
                let std::cmp::Reverse(q) = self.heap.pop().expect("a free column is always reachable");
                if !self.scanned[q.col as usize] && q.dist == self.shortest[q.col as usize] {
                    break q;
                }
            };
            let j = q.col as usize;
            min_val = q.dist;
            self.scanned[j] = true;
            self.scanned_cols.push(j as u32);
            if self.row4col[j] == NONE {
                break j;
            }
            i = self.row4col[j] as usize;
        };

        // Dual update (Crouse 2016, Algorithm 1, step 3).
        self.u[cur_row] += min_val;
        for &r in &self.scanned_rows[1..] {
            let r = r as usize;
            self.u[r] += min_val - self.shortest[self.col4row[r] as usize];
        }
        for &c in &self.scanned_cols {
            let c = c as usize;
            self.v[c] -= min_val - self.shortest[c];
        }

        // Flip the alternating path back to cur_row.
        let mut j = sink;
        loop {
            let r = self.path[j] as usize;
            self.row4col[j] = r as u32;
            let prev = std::mem::replace(&mut self.col4row[r], j as u32);
            if r == cur_row {
                break;
            }
            j = prev as usize;
        }

        // Reset the search state through what it touched.
        for &j in &self.touched {
            self.shortest[j as usize] = INF;
        }
        for &j in &self.scanned_cols {
            self.scanned[j as usize] = false;
        }
        self.touched.clear();
        self.scanned_rows.clear();
        self.scanned_cols.clear();
        self.heap.clear();
        self.best_free = INF;
    }
}

#[cfg(test)]
mod tests;
