//! One order, one car: the nearest car that passes the feasibility rule, found through the
//! spatial index. For an order that cannot wait for the next batch (or a dispatcher asking
//! "who is closest?"); the batch assignment is in [`crate::batch`].

use std::hash::Hash;

use fleet_domain::feasibility::{CarFacts, DispatchParams, Feasible, OrderFacts, WaitReason, WaitTally};
use fleet_domain::feasibility::{check_charge, check_state};

use crate::index::{CarIndex, InvalidPosition};

/// The car picked for an order, with its feasibility figures.
#[derive(Debug, Clone, PartialEq)]
pub struct Pick<K> {
    pub car: K,
    pub feasible: Feasible,
}

/// Why no car was picked.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum NoPick {
    #[error("no car can take the order: {}", .0.code())]
    Waits(WaitReason),
    #[error(transparent)]
    InvalidPickup(#[from] InvalidPosition),
}

/// The nearest car that can take the order and is not in `excluded`.
///
/// Cars come from `index` nearest first; `facts` tells what the rule needs to know of each
/// (`None`: not a candidate, skipped). The index's position is the car's position: the
/// pickup distance is measured from it, whatever `facts` says. The first feasible car is
/// the nearest feasible one, so the search stops there; when there is none, every car has
/// been looked at and the reason is the one [`WaitTally`] gives.
pub fn pick_nearest<K: Eq + Hash + Clone>(
    index: &CarIndex<K>,
    params: &DispatchParams,
    order: &OrderFacts,
    excluded: &[K],
    mut facts: impl FnMut(&K) -> Option<CarFacts>,
) -> Result<Pick<K>, NoPick> {
    let trip_m = order.trip_m(params);
    let mut tally = WaitTally::new();
    for cand in index.nearest(order.pickup)? {
        let Some(car) = facts(cand.key) else { continue };
        if let Err(why) = check_state(&car, order.passengers) {
            tally.failed(why);
            continue;
        }
        let outcome = check_charge(params, &car, params.road_m(cand.haversine_m), trip_m);
        let is_excluded = outcome.is_ok() && excluded.contains(cand.key);
        tally.record(&outcome, is_excluded);
        if let (Ok(feasible), false) = (outcome, is_excluded) {
            return Ok(Pick { car: cand.key.clone(), feasible });
        }
    }
    Err(NoPick::Waits(tally.reason()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use fleet_domain::feasibility::{GeoPoint, check, haversine_m};

    fn car(lat: f64, lon: f64) -> CarFacts {
        CarFacts {
            position: GeoPoint::new(lat, lon),
            seats: 5,
            soc_pct: Some(80.0),
            battery_kwh: 60.0,
            consumption_kwh_per_100km: 15.0,
            online: true,
            idle: true,
            reserved: false,
        }
    }

    fn order() -> OrderFacts {
        OrderFacts { pickup: GeoPoint::new(30.0, 122.1), dropoff: GeoPoint::new(30.02, 122.2), passengers: 3 }
    }

    fn fleet(cars: &[CarFacts]) -> CarIndex<usize> {
        let mut idx = CarIndex::new();
        for (i, c) in cars.iter().enumerate() {
            idx.upsert(i, c.position).unwrap();
        }
        idx
    }

    #[test]
    fn picks_the_nearest_feasible_car_skipping_nearer_infeasible_and_excluded_ones() {
        let cars = [
            CarFacts { seats: 2, ..car(30.0001, 122.1) },
            CarFacts { idle: false, ..car(30.0002, 122.1) },
            car(30.0003, 122.1),
            car(30.0004, 122.1),
            car(30.05, 122.1),
        ];
        let idx = fleet(&cars);
        let p = DispatchParams::default();
        let pick = pick_nearest(&idx, &p, &order(), &[], |&i| Some(cars[i])).unwrap();
        assert_eq!(pick.car, 2);
        assert_eq!(Ok(pick.feasible), check(&p, &cars[2], &order()));
        let pick = pick_nearest(&idx, &p, &order(), &[2], |&i| Some(cars[i])).unwrap();
        assert_eq!(pick.car, 3);
        assert_eq!(pick.feasible.pickup_m, 1.3 * haversine_m(cars[3].position, order().pickup));
    }

    #[test]
    fn explains_why_an_order_waits() {
        let p = DispatchParams::default();
        let none = fleet(&[]);
        let waits = |r| Err(NoPick::Waits(r));
        assert_eq!(pick_nearest(&none, &p, &order(), &[], |_| None), waits(WaitReason::NoCarOnline));
        let cars = [CarFacts { seats: 4, ..car(30.0, 122.1) }, CarFacts { soc_pct: Some(21.0), ..car(30.01, 122.1) }];
        let idx = fleet(&cars);
        let big = OrderFacts { passengers: 4, ..order() };
        assert_eq!(pick_nearest(&idx, &p, &big, &[], |&i| Some(cars[i])), waits(WaitReason::NoCarWithEnoughCharge));
        let bigger = OrderFacts { passengers: 6, ..order() };
        assert_eq!(pick_nearest(&idx, &p, &bigger, &[], |&i| Some(cars[i])), waits(WaitReason::NoCarWithEnoughSeats));
        assert_eq!(pick_nearest(&idx, &p, &order(), &[0], |&i| Some(cars[i])), waits(WaitReason::ExcludedCarsOnly));
        assert!(matches!(
            pick_nearest(&idx, &p, &OrderFacts { pickup: GeoPoint::new(f64::NAN, 0.0), ..order() }, &[], |&i| Some(
                cars[i]
            )),
            Err(NoPick::InvalidPickup(_))
        ));
    }
}
