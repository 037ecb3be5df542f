//! What the simulated people choose: where a unit's order goes and when, and how a driver
//! answers an assignment. Pure, given the random source; the operator does the calls.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Timelike, Utc};
use fleet_domain::{NewOrder, Place};
use rand::Rng;

use crate::places::{PLACES, graph};

/// What units give as the purpose of a trip.
pub(crate) const PURPOSES: [&str; 10] =
    ["会议", "调研", "检查工作", "公务接待", "文件送达", "项目督查", "防汛检查", "走访企业", "安全检查", "培训"];

/// Why a driver declines.
const DECLINE_REASONS: [&str; 4] = ["车辆需要清洁", "司机正在用餐", "路况不熟，请改派", "车内有异常提示音"];

/// Share of a unit's orders booked for later rather than for now.
const BOOKED_SHARE: f64 = 0.1;
/// Share of drivers' answers that are declines, and that are no answer at all (the time to
/// accept runs out); the rest accept.
const DECLINE_SHARE: f64 = 0.08;
const SILENT_SHARE: f64 = 0.04;

/// How the order rate follows the day (Beijing time): full in working hours, half in the
/// evening, `NIGHT_SHARE` at night.
const EVENING_SHARE: f64 = 0.6;
const NIGHT_SHARE: f64 = 0.45;

/// The share of the day rate that applies at `t`.
pub(crate) fn rate_share(t: DateTime<Utc>) -> f64 {
    let hour = (t + TimeDelta::hours(8)).hour();
    match hour {
        7..20 => 1.0,
        20..23 => EVENING_SHARE,
        _ => NIGHT_SHARE,
    }
}

/// A place an order names, from the simulator's places.
fn place(i: usize) -> Place {
    let p = &PLACES[i];
    Place { lat: p.lat, lon: p.lon, name: p.name_zh.to_owned() }
}

/// Picks a destination by popularity, nearer ones likelier when `near` is given.
fn pick_destination(rng: &mut impl Rng, near: Option<usize>) -> usize {
    let g = graph();
    let weights: Vec<(usize, f64)> = g
        .destinations()
        .iter()
        .filter(|&&d| Some(d) != near)
        .map(|&d| {
            let w = f64::from(PLACES[d].popularity.max(1));
            (d, near.map_or(w, |n| w * (-g.travel_s(n, d) / 1_800.0).exp()))
        })
        .collect();
    let total: f64 = weights.iter().map(|w| w.1).sum();
    let mut pick = rng.random_range(0.0..total.max(f64::MIN_POSITIVE));
    for (d, w) in &weights {
        if pick < *w {
            return *d;
        }
        pick -= w;
    }
    weights.last().map_or(0, |w| w.0)
}

/// One order a unit applies for: from a popular place to one near it, for now or (now and
/// then) booked for later in the day.
pub(crate) fn order(rng: &mut impl Rng, unit_id: &str, now: DateTime<Utc>) -> NewOrder {
    let from = pick_destination(rng, None);
    let to = pick_destination(rng, Some(from));
    let passengers = match rng.random_range(0..20) {
        0..12 => 1,
        12..17 => 2,
        17..19 => 3,
        _ => 4,
    };
    let pickup_at = rng.random_bool(BOOKED_SHARE).then(|| now + TimeDelta::minutes(rng.random_range(20..90)));
    NewOrder {
        unit_id: unit_id.to_owned(),
        passengers,
        pickup: place(from),
        dropoff: place(to),
        pickup_at,
        purpose: PURPOSES[rng.random_range(0..PURPOSES.len())].to_owned(),
        override_budget: false,
    }
}

/// A conference's arrivals: `n` orders of several units from all over to one venue, booked
/// for the same time a little ahead.
pub(crate) fn burst(rng: &mut impl Rng, unit_ids: &[String], n: usize, now: DateTime<Utc>) -> Vec<NewOrder> {
    if unit_ids.is_empty() {
        return Vec::new();
    }
    let venue = pick_destination(rng, None);
    let at = now + TimeDelta::minutes(rng.random_range(15..30));
    (0..n)
        .map(|_| {
            let unit = &unit_ids[rng.random_range(0..unit_ids.len())];
            let from = pick_destination(rng, Some(venue));
            NewOrder {
                unit_id: unit.clone(),
                passengers: rng.random_range(1..=3),
                pickup: place(from),
                dropoff: place(venue),
                pickup_at: Some(at),
                purpose: "参加会议".to_owned(),
                override_budget: false,
            }
        })
        .collect()
}

/// How a driver answers an assignment, and after how long.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Answer {
    Accept,
    Decline(&'static str),
    /// Lets the time to accept run out.
    Silence,
}

pub(crate) fn answer(rng: &mut impl Rng) -> (Answer, Duration) {
    let roll: f64 = rng.random();
    let answer = if roll < DECLINE_SHARE {
        Answer::Decline(DECLINE_REASONS[rng.random_range(0..DECLINE_REASONS.len())])
    } else if roll < DECLINE_SHARE + SILENT_SHARE {
        Answer::Silence
    } else {
        Answer::Accept
    };
    let after_s = match answer {
        Answer::Accept => rng.random_range(3.0..20.0),
        Answer::Decline(_) => rng.random_range(5.0..15.0),
        Answer::Silence => 0.0,
    };
    (answer, Duration::from_secs_f64(after_s))
}

/// How long the car waits at the kerb for its passengers.
pub(crate) fn boarding(rng: &mut impl Rng) -> Duration {
    Duration::from_secs_f64(rng.random_range(20.0..90.0))
}

/// How long a unit's approver takes to approve.
pub(crate) fn approval_delay(rng: &mut impl Rng) -> Duration {
    Duration::from_secs_f64(rng.random_range(10.0..60.0))
}

/// Somewhere a car taken for private use goes: a destination some way from where it is.
pub(crate) fn private_destination(rng: &mut impl Rng, from: crate::geo::LatLon) -> Place {
    let g = graph();
    let here = g.nearest_stop(from);
    let far: Vec<usize> = g.destinations().iter().copied().filter(|&d| g.travel_s(here, d) > 300.0).collect();
    let to = if far.is_empty() { pick_destination(rng, Some(here)) } else { far[rng.random_range(0..far.len())] };
    place(to)
}

/// Where a car taken out of the service area goes (Yuyao, over the bridges).
pub(crate) fn away_destination() -> Place {
    place(crate::places::place_index(crate::places::AWAY))
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    #[test]
    fn orders_are_valid_and_go_somewhere_else() {
        let mut rng = StdRng::seed_from_u64(7);
        let now = Utc::now();
        let mut booked = 0;
        for _ in 0..500 {
            let o = order(&mut rng, "u-test", now);
            o.validate(now).expect("a generated order is valid");
            assert_ne!((o.pickup.lat, o.pickup.lon), (o.dropoff.lat, o.dropoff.lon));
            if let Some(at) = o.pickup_at {
                assert!(at > now + TimeDelta::minutes(19) && at < now + TimeDelta::minutes(91));
                booked += 1;
            }
        }
        assert!((20..100).contains(&booked), "about a tenth booked ahead, got {booked} of 500");
    }

    #[test]
    fn a_burst_goes_to_one_venue_at_one_time() {
        let mut rng = StdRng::seed_from_u64(8);
        let units = vec!["u-a".to_owned(), "u-b".to_owned()];
        let orders = burst(&mut rng, &units, 12, Utc::now());
        assert_eq!(orders.len(), 12);
        assert!(orders.windows(2).all(|w| w[0].dropoff.name == w[1].dropoff.name && w[0].pickup_at == w[1].pickup_at));
        assert!(orders.iter().all(|o| units.contains(&o.unit_id)));
        assert!(burst(&mut rng, &[], 3, Utc::now()).is_empty());
    }

    #[test]
    fn most_drivers_accept_some_decline_a_few_stay_silent() {
        let mut rng = StdRng::seed_from_u64(9);
        let (mut accept, mut decline, mut silent) = (0, 0, 0);
        for _ in 0..2000 {
            match answer(&mut rng) {
                (Answer::Accept, d) => {
                    assert!(d >= Duration::from_secs(3) && d <= Duration::from_secs(20));
                    accept += 1;
                }
                (Answer::Decline(reason), _) => {
                    assert!(!reason.is_empty());
                    decline += 1;
                }
                (Answer::Silence, _) => silent += 1,
            }
        }
        assert!(
            accept > 1700 && (80..250).contains(&decline) && (30..140).contains(&silent),
            "{accept}/{decline}/{silent}"
        );
    }

    #[test]
    fn the_rate_is_full_by_day_and_lower_at_night() {
        let t = |h: u32| DateTime::parse_from_rfc3339(&format!("2026-12-07T{h:02}:30:00+08:00")).unwrap().to_utc();
        assert_eq!(rate_share(t(9)), 1.0);
        assert_eq!(rate_share(t(21)), EVENING_SHARE);
        assert_eq!(rate_share(t(3)), NIGHT_SHARE);
    }
}
