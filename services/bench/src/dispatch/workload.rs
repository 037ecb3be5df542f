//! The bench's random Zhoushan: cars at home around its towns, rush-hour pickups at a few
//! busy places, and batches of both.

use chrono::{DateTime, Utc};
use fleet_dispatch::{BatchCar, BatchOrder};
use fleet_domain::feasibility::{CarFacts, GeoPoint, TimeWindow};
use rand::Rng;
use rand::rngs::StdRng;

/// A town: centre, spread (km, one standard deviation) and weight as a car's home.
struct Town {
    lat: f64,
    lon: f64,
    spread_km: f64,
    cars: f64,
}

const TOWNS: [Town; 8] = [
    Town { lat: 30.018, lon: 122.106, spread_km: 2.5, cars: 0.25 }, // Dinghai
    Town { lat: 29.988, lon: 122.207, spread_km: 2.5, cars: 0.25 }, // Lincheng (government centre)
    Town { lat: 29.952, lon: 122.300, spread_km: 2.0, cars: 0.20 }, // Shenjiamen
    Town { lat: 29.990, lon: 122.050, spread_km: 3.0, cars: 0.12 }, // west of Dinghai
    Town { lat: 30.245, lon: 122.205, spread_km: 2.0, cars: 0.07 }, // Daishan
    Town { lat: 29.895, lon: 122.390, spread_km: 1.5, cars: 0.05 }, // Zhujiajian
    Town { lat: 29.995, lon: 122.385, spread_km: 0.8, cars: 0.03 }, // Putuoshan
    Town { lat: 30.030, lon: 121.880, spread_km: 1.5, cars: 0.03 }, // Jintang
];

/// Rush hour: most pickups at a few places on the main island (offices, the hospital, the
/// ferry terminal), spread about 600 m.
const RUSH_SPOTS: [(f64, f64); 5] =
    [(29.986, 122.204), (30.012, 122.103), (29.958, 122.296), (30.003, 122.175), (29.947, 122.259)];

fn normal(rng: &mut StdRng) -> f64 {
    // Box–Muller.
    let u1: f64 = rng.random_range(f64::EPSILON..1.0);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

fn around(rng: &mut StdRng, lat: f64, lon: f64, spread_km: f64) -> GeoPoint {
    let dlat = normal(rng) * spread_km / 111.2;
    let dlon = normal(rng) * spread_km / (111.2 * lat.to_radians().cos());
    GeoPoint::new(lat + dlat, lon + dlon)
}

pub(super) fn car_position(rng: &mut StdRng) -> GeoPoint {
    let mut x: f64 = rng.random();
    for t in &TOWNS {
        if x < t.cars {
            return around(rng, t.lat, t.lon, t.spread_km);
        }
        x -= t.cars;
    }
    around(rng, TOWNS[0].lat, TOWNS[0].lon, TOWNS[0].spread_km)
}

pub(super) fn rush_pickup(rng: &mut StdRng) -> GeoPoint {
    if rng.random_bool(0.8) {
        let (lat, lon) = RUSH_SPOTS[rng.random_range(0..RUSH_SPOTS.len())];
        around(rng, lat, lon, 0.6)
    } else {
        car_position(rng)
    }
}

pub(super) fn dropoff(rng: &mut StdRng) -> GeoPoint {
    car_position(rng)
}

pub(super) fn passengers(rng: &mut StdRng) -> u32 {
    if rng.random_bool(0.05) { rng.random_range(5..=6) } else { rng.random_range(1..=4) }
}

/// An available car somewhere in Zhoushan: online and idle; seats, charge, battery and
/// consumption vary.
pub(super) fn available_car(rng: &mut StdRng) -> CarFacts {
    let position = car_position(rng);
    let (battery_kwh, consumption) =
        if rng.random_bool(0.15) { (82.0, 19.0) } else { (rng.random_range(50.0..78.0), rng.random_range(12.5..16.5)) };
    CarFacts {
        position,
        seats: if rng.random_bool(0.15) { 7 } else { 5 },
        soc_pct: Some(rng.random_range(18.0..100.0)),
        battery_kwh,
        consumption_kwh_per_100km: consumption,
        online: true,
        idle: true,
        reserved: false,
    }
}

fn now_window() -> TimeWindow {
    let t0 = DateTime::<Utc>::from_timestamp(1_790_000_000, 0).expect("a valid instant");
    TimeWindow::new(t0, t0 + chrono::Duration::minutes(45))
}

pub(super) fn batch(
    rng: &mut StdRng,
    orders: usize,
    cars: usize,
) -> (Vec<BatchOrder<usize, usize>>, Vec<BatchCar<usize>>) {
    let window = now_window();
    let orders = (0..orders)
        .map(|id| BatchOrder {
            id,
            pickup: rush_pickup(rng),
            dropoff: dropoff(rng),
            passengers: passengers(rng),
            window,
            excluded: vec![],
        })
        .collect();
    let cars = (0..cars)
        .map(|key| {
            let f = available_car(rng);
            BatchCar {
                key,
                position: f.position,
                seats: f.seats,
                soc_pct: f.soc_pct,
                battery_kwh: f.battery_kwh,
                consumption_kwh_per_100km: f.consumption_kwh_per_100km,
                online: f.online,
                idle: f.idle,
                reservations: vec![],
            }
        })
        .collect();
    (orders, cars)
}
