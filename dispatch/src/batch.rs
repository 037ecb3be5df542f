//! One batch of due orders against the available cars: every feasible (order, car) pair
//! with its pickup distance as cost, the exact optimum over them (the most orders served, then the
//! least total pickup distance: docs/dispatch.md), and for each order left over the reason it waits. A first-come-nearest
//! greedy over the same pairs is here too, as the baseline the optimum is measured against.

use std::collections::HashMap;
use std::hash::Hash;

use fleet_domain::feasibility::{
    CarFacts, ChargeBudget, DispatchParams, Feasible, GeoPoint, Infeasible, OrderFacts, TimeWindow, UnitVector,
    WaitReason, WaitTally, check_charge, check_state,
};

use crate::solver::{self, CostMatrix, MAX_COST, TooLarge};

/// An order due for matching.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchOrder<O, K> {
    pub id: O,
    pub pickup: GeoPoint,
    pub dropoff: GeoPoint,
    pub passengers: u32,
    /// The trip's time span; a car reserved in it cannot take the order.
    pub window: TimeWindow,
    /// Cars that declined this order or let it time out.
    pub excluded: Vec<K>,
}

/// A candidate car. Keys are distinct within a batch.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchCar<K> {
    pub key: K,
    pub position: GeoPoint,
    /// Seats including the driver's (see [`CarFacts::seats`]).
    pub seats: u32,
    pub soc_pct: Option<f64>,
    pub battery_kwh: f64,
    pub consumption_kwh_per_100km: f64,
    pub online: bool,
    pub idle: bool,
    /// Windows in which the car is already promised to booked orders.
    pub reservations: Vec<TimeWindow>,
}

impl<K> BatchCar<K> {
    /// The rule's view of the car for an order in `window`.
    pub fn facts(&self, window: &TimeWindow) -> CarFacts {
        CarFacts { reserved: self.reservations.iter().any(|r| r.overlaps(window)), ..self.base_facts() }
    }

    fn base_facts(&self) -> CarFacts {
        CarFacts {
            position: self.position,
            seats: self.seats,
            soc_pct: self.soc_pct,
            battery_kwh: self.battery_kwh,
            consumption_kwh_per_100km: self.consumption_kwh_per_100km,
            online: self.online,
            idle: self.idle,
            reserved: false,
        }
    }
}

impl<O, K> BatchOrder<O, K> {
    pub fn facts(&self) -> OrderFacts {
        OrderFacts { pickup: self.pickup, dropoff: self.dropoff, passengers: self.passengers }
    }
}

/// An order given a car.
#[derive(Debug, Clone, PartialEq)]
pub struct Match<O, K> {
    pub order: O,
    pub car: K,
    /// The pair's cost: road metres to the pickup, rounded.
    pub pickup_m: u32,
    /// The rule's figures for the pair (exact pickup metres, ETA, energy).
    pub feasible: Feasible,
}

/// An order left waiting, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Waiting<O> {
    pub order: O,
    pub reason: WaitReason,
}

/// What a batch decided.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchOutcome<O, K> {
    /// In the orders' input order.
    pub matches: Vec<Match<O, K>>,
    /// In the orders' input order.
    pub waiting: Vec<Waiting<O>>,
    /// Sum of the matches' `pickup_m`.
    pub total_pickup_m: u64,
}

/// Every feasible pair of a batch: costs (rows = orders, columns = cars) and, per order,
/// how far the cars got through the rule.
#[derive(Debug, Clone)]
pub struct FeasiblePairs {
    pub costs: CostMatrix,
    pub tallies: Vec<WaitTally>,
}

/// Measures every (order, car) pair and keeps the feasible ones, cost = road metres to the
/// pickup rounded to the metre (half up). A pair is feasible when the domain rule passes and
/// the car is not excluded from the order.
pub fn feasible_pairs<O, K: Eq + Hash>(
    params: &DispatchParams,
    orders: &[BatchOrder<O, K>],
    cars: &[BatchCar<K>],
) -> FeasiblePairs {
    // Per car once: the rule's facts, the position on the unit sphere, the charge budget.
    let car_facts: Vec<CarFacts> = cars.iter().map(BatchCar::base_facts).collect();
    let car_at: Vec<UnitVector> = cars.iter().map(|c| UnitVector::new(c.position)).collect();
    let budget: Vec<Option<ChargeBudget>> = car_facts.iter().map(|f| ChargeBudget::new(params, f)).collect();
    let car_no: HashMap<&K, usize> = if orders.iter().any(|o| !o.excluded.is_empty()) {
        cars.iter().enumerate().map(|(i, c)| (&c.key, i)).collect()
    } else {
        HashMap::new()
    };
    let mut tallies = Vec::with_capacity(orders.len());
    let mut costs = CostMatrix::new(orders.len(), cars.len());
    let mut excluded: Vec<usize> = Vec::new();
    for (r, order) in orders.iter().enumerate() {
        let facts = order.facts();
        let pickup = UnitVector::new(order.pickup);
        let trip_m = facts.trip_m(params);
        excluded.clear();
        excluded.extend(order.excluded.iter().filter_map(|k| car_no.get(k).copied()));
        // How far the best car got, kept as a small number in the loop and handed to the
        // domain's tally once per order.
        let mut best = Stage::None;
        costs.fill_row(r, |c| {
            let car = &cars[c];
            let mut f = car_facts[c];
            f.reserved = !car.reservations.is_empty() && car.reservations.iter().any(|w| w.overlaps(&order.window));
            if let Err(why) = check_state(&f, facts.passengers) {
                best = best.max(Stage::Failed(why));
                return None;
            }
            let pickup_m = params.road_m(car_at[c].haversine_m(&pickup));
            if !budget[c].is_some_and(|b| b.covers(params, pickup_m, trip_m)) {
                best = best.max(Stage::Failed(Infeasible::Charge));
                None
            } else if excluded.contains(&c) {
                best = best.max(Stage::Excluded);
                None
            } else {
                best = Stage::Feasible;
                Some(cost_of(pickup_m))
            }
        });
        let mut tally = WaitTally::new();
        match best {
            Stage::None => {}
            Stage::Failed(why) => tally.failed(why),
            Stage::Excluded => tally.excluded(),
            Stage::Feasible => tally.feasible(),
        }
        tallies.push(tally);
    }
    FeasiblePairs { costs, tallies }
}

/// How far a car got through the rule for an order, in the rule's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Stage {
    None,
    Failed(Infeasible),
    Excluded,
    Feasible,
}

/// Road metres as an integer cost, rounded half up.
fn cost_of(pickup_m: f64) -> u32 {
    // `as` saturates (and would take NaN, which finite positions never give, to 0).
    (pickup_m + 0.5).min(f64::from(MAX_COST)) as u32
}

/// The batch's exact optimum: the most orders matched, and of those assignments the least
/// total pickup distance. Fails only on instances far beyond a city's (see [`solver::solve`]).
pub fn assign_optimal<O: Clone, K: Eq + Hash + Clone>(
    params: &DispatchParams,
    orders: &[BatchOrder<O, K>],
    cars: &[BatchCar<K>],
) -> Result<BatchOutcome<O, K>, TooLarge> {
    let pairs = feasible_pairs(params, orders, cars);
    let a = solver::solve(&pairs.costs)?;
    Ok(outcome(params, orders, cars, &pairs, &a.row_to_col))
}

/// First come, nearest car: orders in the given order (their arrival), each takes the
/// nearest feasible car not taken yet (ties to the earlier car). The baseline for the
/// optimum, over the same feasible pairs.
pub fn assign_greedy<O: Clone, K: Eq + Hash + Clone>(
    params: &DispatchParams,
    orders: &[BatchOrder<O, K>],
    cars: &[BatchCar<K>],
) -> BatchOutcome<O, K> {
    let pairs = feasible_pairs(params, orders, cars);
    let mut taken = vec![false; cars.len()];
    let choice: Vec<Option<usize>> = (0..orders.len())
        .map(|r| {
            let best = (0..cars.len())
                .filter(|&c| !taken[c])
                .filter_map(|c| pairs.costs.get(r, c).map(|x| (x, c)))
                .min()
                .map(|(_, c)| c);
            if let Some(c) = best {
                taken[c] = true;
            }
            best
        })
        .collect();
    outcome(params, orders, cars, &pairs, &choice)
}

fn outcome<O: Clone, K: Clone>(
    params: &DispatchParams,
    orders: &[BatchOrder<O, K>],
    cars: &[BatchCar<K>],
    pairs: &FeasiblePairs,
    choice: &[Option<usize>],
) -> BatchOutcome<O, K> {
    let mut out = BatchOutcome { matches: Vec::new(), waiting: Vec::new(), total_pickup_m: 0 };
    for (r, (order, choice)) in orders.iter().zip(choice).enumerate() {
        match *choice {
            Some(c) => {
                let cost = pairs.costs.get(r, c).expect("the solver assigns only feasible pairs");
                // The same arithmetic as when the pair was measured, so the same figures.
                let car = &cars[c];
                let pickup_m = params.road_m(UnitVector::new(car.position).haversine_m(&UnitVector::new(order.pickup)));
                let f = car.facts(&order.window);
                let feasible = check_state(&f, order.passengers)
                    .and_then(|()| check_charge(params, &f, pickup_m, order.facts().trip_m(params)))
                    .expect("a feasible pair stays feasible");
                out.total_pickup_m += u64::from(cost);
                out.matches.push(Match { order: order.id.clone(), car: car.key.clone(), pickup_m: cost, feasible });
            }
            None => out.waiting.push(Waiting { order: order.id.clone(), reason: pairs.tallies[r].reason() }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};
    use fleet_domain::feasibility::{check, haversine_m};
    use proptest::prelude::*;

    fn t(min: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_790_000_000 + min * 60, 0).unwrap()
    }

    fn order(id: u32, lat: f64, lon: f64) -> BatchOrder<u32, &'static str> {
        BatchOrder {
            id,
            pickup: GeoPoint::new(lat, lon),
            dropoff: GeoPoint::new(lat + 0.02, lon + 0.02),
            passengers: 2,
            window: TimeWindow::new(t(0), t(30)),
            excluded: vec![],
        }
    }

    fn car(key: &'static str, lat: f64, lon: f64) -> BatchCar<&'static str> {
        BatchCar {
            key,
            position: GeoPoint::new(lat, lon),
            seats: 5,
            soc_pct: Some(80.0),
            battery_kwh: 60.0,
            consumption_kwh_per_100km: 15.0,
            online: true,
            idle: true,
            reservations: vec![],
        }
    }

    #[test]
    fn the_optimum_beats_first_come_nearest_on_the_classic_line() {
        // Cars at 0.4 and 1.2 km on a line, order 1 at 0.5 km, order 2 at 0 km. Greedy gives
        // order 1 the car at 0.4 (0.1 km) and order 2 the one at 1.2 (1.2 km): 1.3 km. The
        // optimum swaps them: 0.7 + 0.4 = 1.1 km.
        let lon = |km: f64| 122.1 + km / 96.4;
        let orders = [order(1, 30.0, lon(0.5)), order(2, 30.0, lon(0.0))];
        let cars = [car("a", 30.0, lon(0.4)), car("b", 30.0, lon(1.2))];
        let p = DispatchParams::default();
        let best = assign_optimal(&p, &orders, &cars).unwrap();
        let greedy = assign_greedy(&p, &orders, &cars);
        assert_eq!(greedy.matches.iter().map(|m| (m.order, m.car)).collect::<Vec<_>>(), vec![(1, "a"), (2, "b")]);
        assert_eq!(best.matches.iter().map(|m| (m.order, m.car)).collect::<Vec<_>>(), vec![(1, "b"), (2, "a")]);
        assert!(best.total_pickup_m < greedy.total_pickup_m);
        assert!(best.waiting.is_empty());
        let m = &best.matches[0];
        assert_eq!(f64::from(m.pickup_m), (1.3 * haversine_m(cars[1].position, orders[0].pickup)).round());
        assert_eq!(f64::from(m.pickup_m), m.feasible.pickup_m.round());
        assert_eq!(best.total_pickup_m, best.matches.iter().map(|m| u64::from(m.pickup_m)).sum::<u64>());
    }

    #[test]
    fn more_orders_than_cars_leaves_the_costliest_waiting_as_taken() {
        let orders = [order(1, 30.0, 122.10), order(2, 30.0, 122.20), order(3, 30.0, 122.30)];
        let cars = [car("a", 30.0, 122.11), car("b", 30.0, 122.29)];
        let out = assign_optimal(&DispatchParams::default(), &orders, &cars).unwrap();
        assert_eq!(out.matches.iter().map(|m| (m.order, m.car)).collect::<Vec<_>>(), vec![(1, "a"), (3, "b")]);
        assert_eq!(out.waiting, vec![Waiting { order: 2, reason: WaitReason::TakenByOtherOrders }]);
    }

    #[test]
    fn each_waiting_order_gets_the_most_informative_reason() {
        let p = DispatchParams::default();
        let seven = BatchOrder { passengers: 6, ..order(1, 30.0, 122.1) };
        let booked = BatchOrder { window: TimeWindow::new(t(60), t(90)), ..order(2, 30.0, 122.1) };
        let declined = BatchOrder { excluded: vec!["van"], ..order(3, 30.0, 122.1) };
        let far = order(4, 30.72, 122.45);
        let van = BatchCar { seats: 7, reservations: vec![TimeWindow::new(t(70), t(100))], ..car("van", 30.0, 122.11) };
        let low = BatchCar { soc_pct: Some(21.0), ..car("low", 30.0, 122.12) };
        let busy = BatchCar { idle: false, ..car("busy", 30.0, 122.1) };
        let out = assign_optimal(&p, &[seven.clone(), booked, declined, far], &[van.clone(), low, busy]).unwrap();
        // The van serves the 6 passengers. The booked order finds the van reserved and the low
        // car short of charge; the declined order has the van excluded; the far order could
        // have had the van, but order 1 needs it and is far cheaper.
        assert_eq!(out.matches.iter().map(|m| (m.order, m.car)).collect::<Vec<_>>(), vec![(1, "van")]);
        let reasons: Vec<_> = out.waiting.iter().map(|w| (w.order, w.reason)).collect();
        assert_eq!(
            reasons,
            vec![
                (2, WaitReason::NoCarWithEnoughCharge),
                (3, WaitReason::ExcludedCarsOnly),
                (4, WaitReason::TakenByOtherOrders),
            ]
        );
        let only_van_booked = assign_optimal(
            &p,
            &[BatchOrder { window: TimeWindow::new(t(60), t(90)), ..seven.clone() }],
            std::slice::from_ref(&van),
        )
        .unwrap();
        assert_eq!(only_van_booked.waiting[0].reason, WaitReason::AllCarsReserved);
        let small = car("small", 30.0, 122.1);
        assert_eq!(
            assign_optimal(&p, std::slice::from_ref(&seven), &[small]).unwrap().waiting[0].reason,
            WaitReason::NoCarWithEnoughSeats
        );
        let off = BatchCar { online: false, ..van.clone() };
        assert_eq!(
            assign_optimal(&p, std::slice::from_ref(&seven), &[off]).unwrap().waiting[0].reason,
            WaitReason::NoCarOnline
        );
        assert_eq!(assign_optimal(&p, &[seven], &[]).unwrap().waiting[0].reason, WaitReason::NoCarOnline);
        let out = assign_optimal(&p, &[order(5, 30.0, 122.1)], &[BatchCar { idle: false, ..van }]).unwrap();
        assert_eq!(out.waiting[0].reason, WaitReason::AllCarsBusy);
    }

    fn arb_batch() -> impl Strategy<Value = (Vec<BatchOrder<u32, u32>>, Vec<BatchCar<u32>>)> {
        let point = (29.93f64..30.05, 122.0f64..122.35).prop_map(|(lat, lon)| GeoPoint::new(lat, lon));
        let window = (0i64..120).prop_map(|m| TimeWindow::new(t(m), t(m + 30)));
        let orders = proptest::collection::vec(
            (point.clone(), point.clone(), 1u32..=6, window.clone(), proptest::collection::vec(0u32..8, 0..3)),
            0..7,
        );
        let cars = proptest::collection::vec(
            (
                point,
                prop_oneof![Just(5u32), Just(7)],
                proptest::option::weighted(0.95, 0.0f64..100.0),
                any::<bool>(),
                0u8..10,
                proptest::option::of(window),
            ),
            0..8,
        );
        (orders, cars).prop_map(|(orders, cars)| {
            let orders = orders
                .into_iter()
                .enumerate()
                .map(|(i, (pickup, dropoff, passengers, window, excluded))| BatchOrder {
                    id: i as u32,
                    pickup,
                    dropoff,
                    passengers,
                    window,
                    excluded,
                })
                .collect();
            let cars = cars
                .into_iter()
                .enumerate()
                .map(|(i, (position, seats, soc_pct, online, idle, reserved))| BatchCar {
                    key: i as u32,
                    position,
                    seats,
                    soc_pct,
                    battery_kwh: 20.0,
                    consumption_kwh_per_100km: 18.0,
                    online: online || idle > 0,
                    idle: idle > 1,
                    reservations: reserved.into_iter().collect(),
                })
                .collect();
            (orders, cars)
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        #[test]
        fn pairs_follow_the_domain_rule_and_the_optimum_is_never_worse_than_greedy((orders, cars) in arb_batch()) {
            let p = DispatchParams::default();
            let pairs = feasible_pairs(&p, &orders, &cars);
            for (r, o) in orders.iter().enumerate() {
                let mut tally = WaitTally::new();
                for (c, car) in cars.iter().enumerate() {
                    let rule = check(&p, &car.facts(&o.window), &o.facts());
                    let excluded = o.excluded.contains(&car.key);
                    tally.record(&rule, excluded);
                    let want = rule.ok().filter(|_| !excluded).map(|f| (f.pickup_m + 0.5) as u32);
                    prop_assert_eq!(pairs.costs.get(r, c), want);
                }
                prop_assert_eq!(pairs.tallies[r], tally);
            }
            let best = assign_optimal(&p, &orders, &cars).unwrap();
            let greedy = assign_greedy(&p, &orders, &cars);
            prop_assert_eq!(best.matches.len() + best.waiting.len(), orders.len());
            prop_assert!(best.matches.len() >= greedy.matches.len());
            if best.matches.len() == greedy.matches.len() {
                prop_assert!(best.total_pickup_m <= greedy.total_pickup_m);
            }
            let mut used = std::collections::HashSet::new();
            for m in &best.matches {
                prop_assert!(used.insert(m.car), "a car given twice");
                let o = &orders[m.order as usize];
                let car = &cars[m.car as usize];
                prop_assert!(!o.excluded.contains(&m.car));
                prop_assert_eq!(Ok(m.feasible), check(&p, &car.facts(&o.window), &o.facts()));
            }
        }
    }

    #[test]
    fn greedy_leaves_an_order_waiting_that_the_optimum_serves() {
        // Order 1 is nearest to a, which order 2 can also use but b cannot serve order 2
        // (too few seats): greedy gives a to order 1 and leaves order 2 without a car.
        let orders = [order(1, 30.0, 122.10), BatchOrder { passengers: 5, ..order(2, 30.0, 122.101) }];
        let cars = [BatchCar { seats: 7, ..car("a", 30.0, 122.1001) }, car("b", 30.0, 122.11)];
        let p = DispatchParams::default();
        let greedy = assign_greedy(&p, &orders, &cars);
        assert_eq!(greedy.waiting, vec![Waiting { order: 2, reason: WaitReason::TakenByOtherOrders }]);
        let best = assign_optimal(&p, &orders, &cars).unwrap();
        assert_eq!(best.matches.len(), 2);
    }
}
