//! A spatial index of available cars on the H3 grid, for single-order candidate search.
//!
//! Each car sits in the H3 cell of its last position at [`RESOLUTION`]. A search from a
//! pickup scans hollow rings of cells outwards (`k = 0, 1, 2, …`) and yields cars in
//! increasing great-circle distance, exactly: a car found is handed out only once no
//! unscanned cell can hold a nearer one (see [`Nearest`]).

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hash, Hasher};

use fleet_domain::GeoPoint;
use fleet_domain::feasibility::UnitVector;
use h3o::{CellIndex, LatLng, Resolution};

/// The grid resolution: 9, cells of about 0.1 km² with centres about 0.33 km apart
/// (edge ≈ 0.19 km at Zhoushan's latitude).
///
/// Chosen for the two densities the index must serve. With 100,000 cars over Zhoushan's
/// few hundred km² of built-up land a cell holds tens of cars, so the nearest car is
/// usually proven within rings 0–2 (19 cells, a few hundred distance computations); at
/// resolution 8 (7× the area) the same search would measure thousands. With a real fleet
/// of tens to hundreds of cars, rings grow until they reach one, and once a ring would have
/// more cells than the occupied cells left, the search measures the rest directly (see
/// [`Nearest`]), so sparse fleets never pay for long walks over empty sea.
pub const RESOLUTION: Resolution = Resolution::Nine;

/// Safety factor on the origin cell's circumradius when bounding the cells of a ring.
/// H3 cell shapes change smoothly: over the ~30 km of a city, neighbouring res-9 cells'
/// circumradii differ by well under 1 % (checked over Zhoushan in a test), so 25 % spare
/// leaves the bound rigorous at the price of an occasional extra ring.
const CIRCUMRADIUS_MARGIN: f64 = 1.25;

/// The index: every car's cell and position.
#[derive(Debug, Clone)]
pub struct CarIndex<K> {
    /// Car storage; `None` marks a slot freed by a removal, reused through `free`.
    slots: Vec<Option<Slot<K>>>,
    free: Vec<u32>,
    by_key: HashMap<K, u32>,
    cells: HashMap<CellIndex, Vec<Member>, BuildHasherDefault<CellHasher>>,
}

#[derive(Debug, Clone)]
struct Slot<K> {
    key: K,
    position: GeoPoint,
    cell: CellIndex,
}

/// A car as its cell lists it: the position is copied here so a scan needs no other memory.
#[derive(Debug, Clone, Copy)]
struct Member {
    slot: u32,
    at: UnitVector,
}

/// H3 indexes differ mostly in their middle bits (the low bits of a res-9 index are all
/// ones), so the hash mixes all 64 bits (the splitmix64 finalizer, Steele et al. 2014).
#[derive(Debug, Default, Clone, Copy)]
struct CellHasher(u64);

impl Hasher for CellHasher {
    fn finish(&self) -> u64 {
        let mut x = self.0;
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^ (x >> 31)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, x: u64) {
        self.0 ^= x;
    }
}

/// A position that is not a pair of finite numbers.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[error("invalid position {lat}, {lon}")]
pub struct InvalidPosition {
    pub lat: f64,
    pub lon: f64,
}

/// A car the search yields.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate<'a, K> {
    pub key: &'a K,
    pub position: GeoPoint,
    /// Great-circle metres from the search's origin.
    pub haversine_m: f64,
}

impl<K> Default for CarIndex<K> {
    fn default() -> Self {
        Self { slots: Vec::new(), free: Vec::new(), by_key: HashMap::new(), cells: HashMap::default() }
    }
}

fn cell_of(p: GeoPoint) -> Result<CellIndex, InvalidPosition> {
    let ll = LatLng::new(p.lat, p.lon).map_err(|_| InvalidPosition { lat: p.lat, lon: p.lon })?;
    Ok(ll.to_cell(RESOLUTION))
}

impl<K: Eq + Hash + Clone> CarIndex<K> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of cars indexed.
    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    /// Where a car is, if indexed.
    pub fn position(&self, key: &K) -> Option<GeoPoint> {
        let slot = *self.by_key.get(key)?;
        self.slots[slot as usize].as_ref().map(|s| s.position)
    }

    /// Adds a car, or moves it to a new position.
    pub fn upsert(&mut self, key: K, position: GeoPoint) -> Result<(), InvalidPosition> {
        let cell = cell_of(position)?;
        let member_at = UnitVector::new(position);
        if let Some(&slot) = self.by_key.get(&key) {
            let s = self.slots[slot as usize].as_mut().expect("an indexed key has a slot");
            let old_cell = std::mem::replace(&mut s.cell, cell);
            s.position = position;
            if old_cell == cell {
                let members = self.cells.get_mut(&cell).expect("an indexed car's cell is listed");
                let m = members.iter_mut().find(|m| m.slot == slot).expect("a car is listed in its cell");
                m.at = member_at;
            } else {
                Self::unlist(&mut self.cells, old_cell, slot);
                self.cells.entry(cell).or_default().push(Member { slot, at: member_at });
            }
            return Ok(());
        }
        let s = Some(Slot { key: key.clone(), position, cell });
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot as usize] = s;
                slot
            }
            None => {
                self.slots.push(s);
                u32::try_from(self.slots.len() - 1).expect("fewer than 2³² cars")
            }
        };
        self.by_key.insert(key, slot);
        self.cells.entry(cell).or_default().push(Member { slot, at: member_at });
        Ok(())
    }

    /// Takes a car out (it went offline, got an order, …); gives its last position.
    pub fn remove(&mut self, key: &K) -> Option<GeoPoint> {
        let slot = self.by_key.remove(key)?;
        let s = self.slots[slot as usize].take().expect("an indexed key has a slot");
        Self::unlist(&mut self.cells, s.cell, slot);
        self.free.push(slot);
        Some(s.position)
    }

    fn unlist(cells: &mut HashMap<CellIndex, Vec<Member>, BuildHasherDefault<CellHasher>>, cell: CellIndex, slot: u32) {
        let members = cells.get_mut(&cell).expect("an indexed car's cell is listed");
        let at = members.iter().position(|m| m.slot == slot).expect("a car is listed in its cell");
        members.swap_remove(at);
        if members.is_empty() {
            cells.remove(&cell);
        }
    }

    /// Cars in increasing great-circle distance from `from` (ties in no set order).
    pub fn nearest(&self, from: GeoPoint) -> Result<Nearest<'_, K>, InvalidPosition> {
        let origin = cell_of(from)?;
        let center = UnitVector::new(cell_center(origin));
        let circumradius_m = origin
            .boundary()
            .iter()
            .map(|v| center.haversine_m(&UnitVector::new(GeoPoint::new(v.lat(), v.lng()))))
            .fold(0.0, f64::max);
        Ok(Nearest {
            index: self,
            from: UnitVector::new(from),
            origin,
            cell_radius_m: circumradius_m * CIRCUMRADIUS_MARGIN,
            next_ring: 0,
            bound: None,
            heap: BinaryHeap::new(),
            scanned_cells: Vec::new(),
            scanned_cars: 0,
            exhausted: self.is_empty(),
        })
    }
}

fn cell_center(cell: CellIndex) -> GeoPoint {
    let ll = LatLng::from(cell);
    GeoPoint::new(ll.lat(), ll.lng())
}

/// The cells at grid distance exactly `k` (falls back to h3o's safe method near pentagons).
fn ring(origin: CellIndex, k: u32) -> Vec<CellIndex> {
    origin.grid_ring::<Vec<_>>(k)
}

/// A distance that sorts (distances here are never NaN: positions are finite).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Metres(f64);

impl Eq for Metres {}

impl PartialOrd for Metres {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Metres {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// An exact nearest-first search: an iterator over [`Candidate`]s.
///
/// Cars of scanned cells wait in a min-heap. The nearest waiting car is handed out once it
/// is no farther than a lower bound on any car in the cells not yet scanned, which are the
/// cells at grid distance ≥ `k` for the next ring `k`. That bound: any path from the origin
/// to such a cell crosses ring `k` (grid distance changes by at most one between touching
/// cells), and a point in a ring cell is at least (distance to its centre − its
/// circumradius) away, so `min over ring k of d(from, centre) − R` bounds them all. The bound
/// is computed only when a car waits, so empty rings cost one hash lookup per cell.
///
/// When the next ring would hold more cells than there are occupied cells left, the search
/// stops walking rings and takes every remaining car at once.
#[derive(Debug)]
pub struct Nearest<'a, K> {
    index: &'a CarIndex<K>,
    from: UnitVector,
    origin: CellIndex,
    cell_radius_m: f64,
    next_ring: u32,
    /// Lower bound for the cells from `next_ring` outwards, once computed.
    bound: Option<f64>,
    heap: BinaryHeap<Reverse<(Metres, u32)>>,
    /// Occupied cells already scanned.
    scanned_cells: Vec<CellIndex>,
    scanned_cars: usize,
    /// Every car is in the heap or handed out.
    exhausted: bool,
}

impl<K: Eq + Hash + Clone> Nearest<'_, K> {
    fn push_cell(&mut self, cell: CellIndex) {
        if let Some(members) = self.index.cells.get(&cell) {
            for m in members {
                self.heap.push(Reverse((Metres(self.from.haversine_m(&m.at)), m.slot)));
            }
            self.scanned_cars += members.len();
            self.scanned_cells.push(cell);
        }
    }

    fn scan_next_ring(&mut self) {
        let k = self.next_ring;
        let cells_left = self.index.cells.len() - self.scanned_cells.len();
        let ring_cells = if k == 0 { 1 } else { 6 * k as usize };
        if ring_cells > cells_left {
            let scanned: HashSet<CellIndex> = self.scanned_cells.drain(..).collect();
            let rest: Vec<CellIndex> = self.index.cells.keys().filter(|c| !scanned.contains(c)).copied().collect();
            for cell in rest {
                self.push_cell(cell);
            }
            self.exhausted = true;
            return;
        }
        for cell in ring(self.origin, k) {
            self.push_cell(cell);
        }
        self.next_ring = k + 1;
        self.bound = None;
        if self.scanned_cars == self.index.len() {
            self.exhausted = true;
        }
    }

    /// Lower bound on the distance of any car in cells at grid distance ≥ `next_ring`.
    fn bound(&mut self) -> f64 {
        if let Some(b) = self.bound {
            return b;
        }
        let k = self.next_ring;
        let b = if k == 0 {
            0.0
        } else {
            ring(self.origin, k)
                .into_iter()
                .map(|c| self.from.haversine_m(&UnitVector::new(cell_center(c))) - self.cell_radius_m)
                .fold(f64::INFINITY, f64::min)
        };
        self.bound = Some(b);
        b
    }
}

impl<'a, K: Eq + Hash + Clone> Iterator for Nearest<'a, K> {
    type Item = Candidate<'a, K>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(&Reverse((Metres(d), slot))) = self.heap.peek() {
                if self.exhausted || d <= self.bound() {
                    self.heap.pop();
                    let s = self.index.slots[slot as usize].as_ref().expect("a listed car has a slot");
                    return Some(Candidate { key: &s.key, position: s.position, haversine_m: d });
                }
            } else if self.exhausted {
                return None;
            }
            self.scan_next_ring();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fleet_domain::feasibility::haversine_m;
    use proptest::prelude::*;

    fn zhoushan() -> impl Strategy<Value = GeoPoint> {
        (29.93f64..30.05, 122.0f64..122.35).prop_map(|(lat, lon)| GeoPoint::new(lat, lon))
    }

    #[test]
    fn an_empty_index_finds_nothing() {
        let idx: CarIndex<u32> = CarIndex::new();
        assert_eq!(idx.nearest(GeoPoint::new(30.0, 122.1)).unwrap().count(), 0);
        assert!(idx.nearest(GeoPoint::new(f64::NAN, 122.1)).is_err());
    }

    #[test]
    fn cars_move_and_leave() {
        let mut idx = CarIndex::new();
        idx.upsert("a", GeoPoint::new(30.0, 122.1)).unwrap();
        idx.upsert("b", GeoPoint::new(30.01, 122.1)).unwrap();
        let from = GeoPoint::new(30.02, 122.1);
        let first = |idx: &CarIndex<&'static str>| -> &'static str { idx.nearest(from).unwrap().next().unwrap().key };
        assert_eq!(first(&idx), "b");
        idx.upsert("a", GeoPoint::new(30.0199, 122.1)).unwrap();
        assert_eq!(first(&idx), "a");
        // A move within the same cell updates the distance too.
        idx.upsert("a", GeoPoint::new(30.0198, 122.1)).unwrap();
        let c = idx.nearest(from).unwrap().next().unwrap();
        assert!((c.haversine_m - haversine_m(from, GeoPoint::new(30.0198, 122.1))).abs() < 1e-9);
        assert_eq!(idx.remove(&"a"), Some(GeoPoint::new(30.0198, 122.1)));
        assert_eq!(idx.remove(&"a"), None);
        assert_eq!((first(&idx), idx.len()), ("b", 1));
        idx.upsert("c", GeoPoint::new(29.99, 122.1)).unwrap();
        assert_eq!(idx.nearest(from).unwrap().map(|c| *c.key).collect::<Vec<_>>(), vec!["b", "c"]);
        assert!(idx.upsert("d", GeoPoint::new(30.0, f64::INFINITY)).is_err());
        assert_eq!(idx.position(&"d"), None);
    }

    #[test]
    fn a_lone_car_across_the_sea_is_found() {
        let mut idx = CarIndex::new();
        idx.upsert(1, GeoPoint::new(30.72, 122.45)).unwrap(); // Shengsi, ~80 km away
        let all: Vec<_> = idx.nearest(GeoPoint::new(30.0, 122.1)).unwrap().collect();
        assert_eq!(all.len(), 1);
    }

    #[test]
    fn neighbouring_cells_have_nearly_the_same_circumradius_over_zhoushan() {
        let circumradius = |c: CellIndex| {
            let center = UnitVector::new(cell_center(c));
            c.boundary()
                .iter()
                .map(|v| center.haversine_m(&UnitVector::new(GeoPoint::new(v.lat(), v.lng()))))
                .fold(0.0, f64::max)
        };
        for from in [GeoPoint::new(29.93, 122.0), GeoPoint::new(30.0, 122.2), GeoPoint::new(30.72, 122.45)] {
            let origin = cell_of(from).unwrap();
            let r0 = circumradius(origin);
            let worst = origin.grid_disk::<Vec<_>>(40).into_iter().map(circumradius).fold(0.0, f64::max);
            assert!(worst / r0 < 1.05, "{worst} vs {r0}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn yields_every_car_in_increasing_distance(
            cars in proptest::collection::vec(zhoushan(), 0..300),
            from in zhoushan(),
        ) {
            let mut idx = CarIndex::new();
            for (i, p) in cars.iter().enumerate() {
                idx.upsert(i, *p).unwrap();
            }
            let got: Vec<_> = idx.nearest(from).unwrap().map(|c| (*c.key, c.haversine_m)).collect();
            prop_assert_eq!(got.len(), cars.len());
            let mut want: Vec<f64> = cars.iter().map(|p| haversine_m(from, *p)).collect();
            want.sort_by(f64::total_cmp);
            for ((i, d), w) in got.iter().zip(&want) {
                prop_assert_eq!(*d, *w);
                prop_assert_eq!(*d, haversine_m(from, cars[*i]));
            }
        }

        #[test]
        fn the_first_car_is_the_nearest_in_a_dense_city(
            cars in proptest::collection::vec(zhoushan(), 2000..3000),
            from in zhoushan(),
        ) {
            let mut idx = CarIndex::new();
            for (i, p) in cars.iter().enumerate() {
                idx.upsert(i, *p).unwrap();
            }
            let first = idx.nearest(from).unwrap().take(5).map(|c| c.haversine_m).collect::<Vec<_>>();
            let mut want: Vec<f64> = cars.iter().map(|p| haversine_m(from, *p)).collect();
            want.sort_by(f64::total_cmp);
            prop_assert_eq!(&first[..], &want[..5]);
        }
    }
}
