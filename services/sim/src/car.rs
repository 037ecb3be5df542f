//! One simulated electric car: pure state stepped through time, no I/O. Given the same seed,
//! start and steps it produces the same samples, so the live simulator and the demo history
//! share one model.
//!
//! The car parks at a place for a while, then drives to another along the road graph's
//! quickest path, or to a charging site when its battery runs low, and charges there.

mod clock;

use chrono::{DateTime, TimeDelta, Utc};
use fleet_domain::{Sample, SampleSource, Vin};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use self::clock::{ambient_temp_c, is_working_time, next_shift_start};
use super::geo::LatLon;
use super::places::{CHARGERS, FERRY_BOARDING_MAX_MIN, Link, PLACES, graph, home_place};

/// Below this state of charge a car goes to charge before anything else (percent).
pub const CHARGE_BELOW_PCT: f64 = 30.0;
/// A trip is only started if the car could go on from its destination to a charger and
/// still have this much left there (percent).
const RESERVE_AT_CHARGER_PCT: f64 = 10.0;
/// Parked cars stand within this distance of their place (a car park, not one point).
pub const PARK_SPREAD_M: f64 = 60.0;
/// Power drawn by the car's own systems (air conditioning, electronics) while switched on.
const AUXILIARY_KW: f64 = 0.6;
/// Above this state of charge charging power halves (the constant-voltage phase).
const TAPER_ABOVE_PCT: f64 = 80.0;
/// Fastest a pack accepts charge, in multiples of its capacity per hour.
const MAX_CHARGE_C_RATE: f64 = 1.5;
/// How often a car on call that is parked looks at its battery (and goes to charge if low).
const ON_CALL_CHECK: TimeDelta = TimeDelta::minutes(5);
/// A car sent to a place stops within this distance of it (at the kerb, not in a car park).
const KERB_SPREAD_M: f64 = 15.0;
/// Pack voltage at 0 % state of charge, rising by [`VOLTS_PER_PCT`] per percent.
const PACK_EMPTY_V: f64 = 330.0;
const VOLTS_PER_PCT: f64 = 0.8;
/// Pack internal resistance, in ohms (voltage sag under load).
const PACK_RESISTANCE_OHM: f64 = 0.04;
/// Time constant of the pack temperature following its target, in seconds.
const THERMAL_TIME_S: f64 = 1_800.0;

/// What the simulated car is.
#[derive(Debug, Clone, PartialEq)]
pub struct CarSpec {
    pub vin: Vin,
    pub battery_kwh: f64,
    pub consumption_kwh_per_100km: f64,
    /// Written into every sample: how the car reports.
    pub source: SampleSource,
}

/// When the car is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rhythm {
    /// Trips day and night with short stops: the live simulator, a lively map at any hour.
    AroundTheClock,
    /// A municipal car: trips on working days (Monday to Friday, 07:30–18:30 Beijing time),
    /// back to its home place for the night and the weekend.
    WorkingDays,
    /// A dispatched car: it stays where it is until it is sent somewhere ([`Car::go_to`], as
    /// its driver does for an order), and between errands goes to charge by itself when its
    /// battery runs low.
    OnCall,
}

/// Where a car that was sent somewhere ([`Car::go_to`]) is with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Errand {
    /// On the way to the place at this index of [`PLACES`].
    EnRoute { to: usize },
    /// Parked there, waiting to be sent on.
    Arrived { at: usize },
}

/// What the car is doing, as seen from outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CarActivity {
    Parked,
    Driving,
    /// Waiting at the pier for, or riding, the ferry: switched off, maybe moving.
    Ferry,
    Charging,
}

#[derive(Debug, Clone, Copy)]
enum Goal {
    Visit,
    Home,
    /// To the charging site at this index of [`CHARGERS`].
    Charge(usize),
    /// Where it was sent ([`Car::go_to`]).
    Errand,
}

#[derive(Debug, Clone)]
struct Trip {
    path: Vec<usize>,
    /// Index in `path` of the current segment's start.
    seg: usize,
    along_m: f64,
    goal: Goal,
    cruise_kmh: f64,
    /// Standing still on the way (red light, waiting for the ferry), seconds left.
    hold_s: f64,
}

impl Trip {
    /// Bearing of the current segment, in the direction of travel.
    fn bearing_deg(&self) -> f64 {
        PLACES[self.path[self.seg]].pos().bearing_deg(PLACES[self.path[self.seg + 1]].pos())
    }
}

#[derive(Debug, Clone)]
enum State {
    Parked { until: DateTime<Utc> },
    Driving(Trip),
    Charging { site: usize, power_kw: f64, target_pct: f64 },
}

/// A simulated car. See the module documentation.
#[derive(Debug, Clone)]
pub struct Car {
    spec: CarSpec,
    rhythm: Rhythm,
    rng: StdRng,
    now: DateTime<Utc>,
    home: usize,
    /// The place the car is at, or last left.
    at: usize,
    /// Where in the car park it stands, metres north and east of the place.
    park_offset: (f64, f64),
    heading_deg: f64,
    odometer_km: f64,
    soc_pct: f64,
    temp_c: f64,
    /// Speed and battery power (discharge positive) at `now`.
    speed_kmh: f64,
    power_kw: f64,
    state: State,
    errand: Option<Errand>,
}

impl Car {
    /// A car parked at its home place at `start`, with a state drawn from `seed`.
    pub fn new(spec: CarSpec, start: DateTime<Utc>, rhythm: Rhythm, seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let home = home_place(&spec.vin);
        let first_departure = match rhythm {
            Rhythm::AroundTheClock => start + minutes(rng.random_range(0.0..15.0)),
            Rhythm::WorkingDays if is_working_time(start) => start + minutes(rng.random_range(0.0..60.0)),
            Rhythm::WorkingDays => next_shift_start(start) + minutes(rng.random_range(0.0..90.0)),
            Rhythm::OnCall => start + ON_CALL_CHECK,
        };
        let mut car = Self {
            rhythm,
            now: start,
            home,
            at: home,
            park_offset: (0.0, 0.0),
            heading_deg: rng.random_range(0.0..360.0),
            odometer_km: rng.random_range(3_000.0..60_000.0_f64).round(),
            soc_pct: rng.random_range(55.0..95.0),
            temp_c: ambient_temp_c(start),
            speed_kmh: 0.0,
            power_kw: 0.0,
            state: State::Parked { until: first_departure },
            errand: None,
            spec,
            rng,
        };
        car.park_offset = car.draw_park_offset(PARK_SPREAD_M);
        car
    }

    pub fn vin(&self) -> &Vin {
        &self.spec.vin
    }

    pub fn spec(&self) -> &CarSpec {
        &self.spec
    }

    /// The car's clock: the time of its latest sample.
    pub fn now(&self) -> DateTime<Utc> {
        self.now
    }

    pub fn activity(&self) -> CarActivity {
        match &self.state {
            State::Parked { .. } => CarActivity::Parked,
            State::Charging { .. } => CarActivity::Charging,
            State::Driving(trip) if self.on_ferry(trip) => CarActivity::Ferry,
            State::Driving(_) => CarActivity::Driving,
        }
    }

    pub fn soc_pct(&self) -> f64 {
        self.soc_pct
    }

    /// Where it is with the last errand it was sent on, if any.
    pub fn errand(&self) -> Option<Errand> {
        self.errand
    }

    /// Sends the car to the place of the road graph nearest `to` (its driver setting off for
    /// an order's pickup or drop-off): it leaves what it is doing (a charge is cut short, a
    /// trip turns at its next waypoint) and, once there, parks and waits to be sent on.
    pub fn go_to(&mut self, to: LatLon) {
        let g = graph();
        let dest = g.nearest_stop(to);
        self.errand = Some(Errand::EnRoute { to: dest });
        let state = std::mem::replace(&mut self.state, State::Parked { until: self.now });
        self.state = match state {
            State::Driving(trip) => {
                // On from the waypoint ahead: the car does not jump back to where it started.
                let (from, ahead) = (trip.path[trip.seg], trip.path[trip.seg + 1]);
                let mut path = vec![from];
                path.extend(g.path(ahead, dest));
                if path.len() < 2 {
                    path.push(ahead);
                }
                State::Driving(Trip { path, seg: 0, goal: Goal::Errand, ..trip })
            }
            State::Parked { .. } | State::Charging { .. } => {
                self.speed_kmh = 0.0;
                self.power_kw = 0.0;
                self.start_trip(dest, Goal::Errand, 0.0)
            }
        };
    }

    /// Advances the car by `dt` and reports where it is and how it is.
    pub fn step(&mut self, dt: std::time::Duration) -> Sample {
        self.advance(dt);
        self.sample()
    }

    /// Advances the car by `dt` without building a sample.
    pub fn advance(&mut self, dt: std::time::Duration) {
        let dt_s = dt.as_secs_f64();
        if dt_s <= 0.0 {
            return;
        }
        let Some(now) = TimeDelta::from_std(dt).ok().and_then(|d| self.now.checked_add_signed(d)) else {
            return; // beyond the calendar: nothing sensible to simulate
        };
        self.now = now;
        self.speed_kmh = 0.0;
        self.power_kw = 0.0;
        let state = std::mem::replace(&mut self.state, State::Parked { until: self.now });
        self.state = match state {
            State::Parked { until } if until <= self.now => {
                let spare = (self.now - until).as_seconds_f64().min(dt_s);
                self.depart(spare)
            }
            parked @ State::Parked { .. } => parked,
            State::Driving(trip) => self.drive(trip, dt_s),
            State::Charging { site, power_kw, target_pct } => self.charge(site, power_kw, target_pct, dt_s),
        };
        self.warm_up(dt_s);
    }

    /// The car's report at its current time.
    pub fn sample(&self) -> Sample {
        let pos = self.position();
        let activity = self.activity();
        let charging = activity == CarActivity::Charging;
        let ignition = activity == CarActivity::Driving;
        let open_v = PACK_EMPTY_V + VOLTS_PER_PCT * self.soc_pct;
        let current_a = self.power_kw * 1000.0 / open_v;
        let voltage_v = open_v - PACK_RESISTANCE_OHM * current_a;
        let range_km = self.soc_pct / 100.0 * self.spec.battery_kwh / self.spec.consumption_kwh_per_100km * 100.0;
        let heading = round_to(self.heading(), 1);
        Sample {
            speed_kmh: Some(round_to(self.speed_kmh, 1)),
            heading_deg: Some(if heading >= 360.0 { 0.0 } else { heading }),
            soc_pct: Some(round_to(self.soc_pct, 1)),
            odometer_km: Some(round_to(self.odometer_km, 1)),
            charging: Some(charging),
            ignition: Some(ignition),
            battery_voltage_v: Some(round_to(voltage_v, 1)),
            battery_current_a: Some(round_to(current_a, 1)),
            battery_temp_c: Some(round_to(self.temp_c, 1)),
            range_km: Some(round_to(range_km, 1)),
            ..Sample::at(self.spec.vin.clone(), self.now, round_to(pos.lat, 6), round_to(pos.lon, 6), self.spec.source)
        }
    }

    /// Where the car is (at its current time).
    pub fn position(&self) -> LatLon {
        match &self.state {
            State::Driving(trip) => {
                let (a, b) = (trip.path[trip.seg], trip.path[trip.seg + 1]);
                let len = graph().edge(a, b).map_or(1.0, |e| e.length_m.max(1.0));
                PLACES[a].pos().lerp(PLACES[b].pos(), (trip.along_m / len).clamp(0.0, 1.0))
            }
            _ => PLACES[self.at].pos().offset_m(self.park_offset.0, self.park_offset.1),
        }
    }

    fn heading(&self) -> f64 {
        match &self.state {
            State::Driving(trip) => trip.bearing_deg(),
            _ => self.heading_deg,
        }
    }

    fn on_ferry(&self, trip: &Trip) -> bool {
        self.link(trip) == Link::Ferry
    }

    fn link(&self, trip: &Trip) -> Link {
        graph().edge(trip.path[trip.seg], trip.path[trip.seg + 1]).map_or(Link::Urban, |e| e.link)
    }

    /// Chooses what to do after a stop, and does it for the `spare_s` seconds left in this step.
    fn depart(&mut self, spare_s: f64) -> State {
        let g = graph();
        if self.rhythm == Rhythm::OnCall {
            // Waits where it is; charges when low.
            if self.soc_pct < CHARGE_BELOW_PCT {
                self.errand = None;
                let site = self.best_charger();
                return self.start_trip(g.charger_places()[site], Goal::Charge(site), spare_s);
            }
            return State::Parked { until: self.now + ON_CALL_CHECK };
        }
        let working = self.rhythm == Rhythm::AroundTheClock || is_working_time(self.now);
        let (dest, goal) = match (working, self.at == self.home) {
            (true, _) => (self.pick_destination(), Goal::Visit),
            (false, false) => (self.home, Goal::Home),
            (false, true) if self.soc_pct >= CHARGE_BELOW_PCT => {
                let until = next_shift_start(self.now) + minutes(self.rng.random_range(0.0..90.0));
                return State::Parked { until };
            }
            (false, true) => (self.home, Goal::Home),
        };
        // Enough charge to get there and on to the nearest charger from there, with some to spare?
        let onward_km = g.charger_places().iter().map(|&c| g.driven_km(&g.path(dest, c))).fold(f64::INFINITY, f64::min);
        let needed_kwh =
            (g.driven_km(&g.path(self.at, dest)) + onward_km) * self.spec.consumption_kwh_per_100km / 100.0 * 1.3;
        let short = self.soc_pct - needed_kwh / self.spec.battery_kwh * 100.0 < RESERVE_AT_CHARGER_PCT;
        if self.soc_pct < CHARGE_BELOW_PCT || short {
            let site = self.best_charger();
            return self.start_trip(g.charger_places()[site], Goal::Charge(site), spare_s);
        }
        self.start_trip(dest, goal, spare_s)
    }

    fn pick_destination(&mut self) -> usize {
        let g = graph();
        if self.rhythm == Rhythm::WorkingDays && self.at != self.home && self.rng.random_bool(0.4) {
            return self.home;
        }
        // Popular places near by are likelier than far ones.
        let weights: Vec<(usize, f64)> = g
            .destinations()
            .iter()
            .filter(|&&d| d != self.at)
            .map(|&d| (d, f64::from(PLACES[d].popularity) * (-g.travel_s(self.at, d) / 2_400.0).exp()))
            .collect();
        let total: f64 = weights.iter().map(|w| w.1).sum();
        let mut pick = self.rng.random_range(0.0..total.max(f64::MIN_POSITIVE));
        for (d, w) in &weights {
            if pick < *w {
                return *d;
            }
            pick -= w;
        }
        weights.last().map_or(self.home, |w| w.0)
    }

    /// The charging site that gets the car charged soonest: driving there plus charging.
    fn best_charger(&self) -> usize {
        let g = graph();
        let to_fill_kwh = (90.0 - self.soc_pct).max(10.0) / 100.0 * self.spec.battery_kwh;
        let cost =
            |i: usize| g.travel_s(self.at, g.charger_places()[i]) + to_fill_kwh / self.charge_power_kw(i) * 3_600.0;
        (0..CHARGERS.len()).min_by(|&a, &b| cost(a).total_cmp(&cost(b))).unwrap_or(0)
    }

    fn charge_power_kw(&self, site: usize) -> f64 {
        CHARGERS[site].power_kw.min(self.spec.battery_kwh * MAX_CHARGE_C_RATE)
    }

    fn start_trip(&mut self, to: usize, goal: Goal, spare_s: f64) -> State {
        let path = graph().path(self.at, to);
        if path.len() < 2 {
            return self.arrive(goal, spare_s);
        }
        let mut trip = Trip { path, seg: 0, along_m: 0.0, goal, cruise_kmh: 0.0, hold_s: 0.0 };
        self.enter_segment(&mut trip, None);
        self.drive(trip, spare_s)
    }

    /// Sets the cruising speed for the trip's current segment, and the wait at the pier when
    /// it boards the ferry.
    fn enter_segment(&mut self, trip: &mut Trip, previous: Option<Link>) {
        let link = self.link(trip);
        let (lo, hi) = link.speed_range_kmh();
        trip.cruise_kmh = self.rng.random_range(lo..hi);
        if link == Link::Ferry && previous != Some(Link::Ferry) {
            trip.hold_s = self.rng.random_range(5.0..FERRY_BOARDING_MAX_MIN) * 60.0;
        }
    }

    fn drive(&mut self, mut trip: Trip, budget_s: f64) -> State {
        let g = graph();
        let mut t = budget_s;
        if self.link(&trip) == Link::Urban && self.rng.random_bool((budget_s / 90.0).min(0.6)) {
            trip.hold_s += self.rng.random_range(10.0..45.0); // a red light
        }
        let (mut driven_km, mut energy_kwh, mut on_s) = (0.0, 0.0, 0.0);
        let mut speed = 0.0;
        while t > 1e-9 {
            let link = self.link(&trip);
            if trip.hold_s > 0.0 {
                let h = trip.hold_s.min(t);
                trip.hold_s -= h;
                t -= h;
                if link != Link::Ferry {
                    on_s += h;
                }
                speed = 0.0;
                continue;
            }
            let edge = *g.edge(trip.path[trip.seg], trip.path[trip.seg + 1]).expect("paths follow edges");
            let (lo, hi) = link.speed_range_kmh();
            speed = (trip.cruise_kmh * self.rng.random_range(0.9..1.1)).clamp(lo, hi);
            let v = speed / 3.6;
            let run_s = ((edge.length_m - trip.along_m) / v).min(t);
            trip.along_m += v * run_s;
            t -= run_s;
            if link != Link::Ferry {
                let km = v * run_s / 1000.0;
                driven_km += km;
                on_s += run_s;
                let speed_factor = 0.85 + 0.35 * (speed / 70.0).powi(2);
                energy_kwh += km * self.spec.consumption_kwh_per_100km / 100.0 * speed_factor;
                self.power_kw = self.spec.consumption_kwh_per_100km / 100.0 * speed * speed_factor + AUXILIARY_KW;
            }
            if trip.along_m >= edge.length_m - 1e-6 {
                self.heading_deg = trip.bearing_deg();
                trip.seg += 1;
                trip.along_m = 0.0;
                if trip.seg + 1 >= trip.path.len() {
                    self.at = *trip.path.last().unwrap_or(&self.at);
                    self.spend(driven_km, energy_kwh + AUXILIARY_KW * on_s / 3_600.0);
                    return self.arrive(trip.goal, t);
                }
                self.enter_segment(&mut trip, Some(link));
            }
        }
        self.spend(driven_km, energy_kwh + AUXILIARY_KW * on_s / 3_600.0);
        if trip.hold_s > 0.0 {
            self.power_kw = if self.on_ferry(&trip) { 0.0 } else { AUXILIARY_KW };
        } else {
            self.speed_kmh = speed;
            if self.on_ferry(&trip) {
                self.power_kw = 0.0;
            }
        }
        State::Driving(trip)
    }

    fn spend(&mut self, driven_km: f64, energy_kwh: f64) {
        self.odometer_km += driven_km;
        let noise = self.rng.random_range(0.95..1.05);
        self.soc_pct = (self.soc_pct - energy_kwh * noise / self.spec.battery_kwh * 100.0).clamp(0.0, 100.0);
    }

    /// The car has reached its goal `spare_s` seconds before the end of this step.
    fn arrive(&mut self, goal: Goal, spare_s: f64) -> State {
        let arrived = self.now - TimeDelta::milliseconds((spare_s * 1000.0) as i64);
        self.speed_kmh = 0.0;
        self.power_kw = 0.0;
        match goal {
            Goal::Charge(site) => {
                self.park_offset = self.draw_park_offset(PARK_SPREAD_M / 3.0);
                let target_pct = self.rng.random_range(85.0..95.0);
                self.charge(site, self.charge_power_kw(site), target_pct, spare_s)
            }
            Goal::Home if self.rhythm == Rhythm::WorkingDays && !is_working_time(arrived) => {
                self.park_offset = self.draw_park_offset(PARK_SPREAD_M);
                let until = next_shift_start(arrived) + minutes(self.rng.random_range(0.0..90.0));
                State::Parked { until }
            }
            Goal::Errand => {
                // At the kerb, waiting for the next word.
                self.errand = Some(Errand::Arrived { at: self.at });
                self.park_offset = self.draw_park_offset(KERB_SPREAD_M);
                State::Parked { until: arrived + ON_CALL_CHECK }
            }
            Goal::Home | Goal::Visit => {
                self.park_offset = self.draw_park_offset(PARK_SPREAD_M);
                let dwell_min = match self.rhythm {
                    Rhythm::AroundTheClock => self.rng.random_range(3.0..25.0),
                    Rhythm::WorkingDays | Rhythm::OnCall => self.rng.random_range(20.0..150.0),
                };
                State::Parked { until: arrived + minutes(dwell_min) }
            }
        }
    }

    fn charge(&mut self, site: usize, power_kw: f64, target_pct: f64, budget_s: f64) -> State {
        let mut t = budget_s;
        while t > 1e-9 && self.soc_pct < target_pct {
            let (taper, phase_end) =
                if self.soc_pct < TAPER_ABOVE_PCT { (1.0, target_pct.min(TAPER_ABOVE_PCT)) } else { (0.5, target_pct) };
            let pct_per_s = power_kw * taper / self.spec.battery_kwh * 100.0 / 3_600.0;
            let s = ((phase_end - self.soc_pct) / pct_per_s).min(t);
            self.soc_pct = (self.soc_pct + pct_per_s * s).min(100.0);
            self.power_kw = -power_kw * taper;
            t -= s;
        }
        if self.soc_pct >= target_pct - 1e-9 {
            self.power_kw = 0.0;
            let done = self.now - TimeDelta::milliseconds((t * 1000.0) as i64);
            return State::Parked { until: done + minutes(self.rng.random_range(2.0..10.0)) };
        }
        State::Charging { site, power_kw, target_pct }
    }

    /// The pack warms with use and drifts towards the weather.
    fn warm_up(&mut self, dt_s: f64) {
        let heat = match self.activity() {
            CarActivity::Driving => 2.0 + self.speed_kmh / 15.0,
            CarActivity::Charging => -self.power_kw / 8.0,
            CarActivity::Parked | CarActivity::Ferry => 0.0,
        };
        let target = ambient_temp_c(self.now) + heat;
        self.temp_c += (target - self.temp_c) * (1.0 - (-dt_s / THERMAL_TIME_S).exp());
    }

    fn draw_park_offset(&mut self, radius_m: f64) -> (f64, f64) {
        let r = radius_m * self.rng.random::<f64>().sqrt();
        let a = self.rng.random_range(0.0..std::f64::consts::TAU);
        (r * a.cos(), r * a.sin())
    }
}

fn minutes(m: f64) -> TimeDelta {
    TimeDelta::milliseconds((m * 60_000.0) as i64)
}

fn round_to(v: f64, decimals: i32) -> f64 {
    let k = 10f64.powi(decimals);
    (v * k).round() / k
}

#[cfg(test)]
mod tests;
