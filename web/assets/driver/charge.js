// Whether the car's charge covers the next trip: the same rule dispatch applies before it
// assigns a car (docs/dispatch.md), so the driver sees the warning dispatch would have given.
// The numbers start at the documented defaults and are replaced by the server's configured
// ones (`dispatch` in `GET /api/v1/map/config`) once they arrive.

const rule = {
  /** Road metres per great-circle metre. */
  roadFactor: 1.3,
  /** Safety margin on the energy a trip needs. */
  energyMargin: 1.15,
  /** Charge kept in reserve, percent of the battery. */
  reservePct: 20,
};

/** The reserve dispatch keeps, percent of the battery. */
export function reservePct() {
  return rule.reservePct;
}

/** Takes the server's dispatch numbers (`{road_factor, energy_margin, reserve_pct}`). */
export function setRule(d) {
  if (Number.isFinite(d?.road_factor)) rule.roadFactor = d.road_factor;
  if (Number.isFinite(d?.energy_margin)) rule.energyMargin = d.energy_margin;
  if (Number.isFinite(d?.reserve_pct)) rule.reservePct = d.reserve_pct;
}
/** The domain's Earth radius (fleet-domain `EARTH_RADIUS_M`), so distances match dispatch. */
const EARTH_RADIUS_KM = 6371.0088;

/** Great-circle distance in km between two `{lat, lon}` (WGS-84). */
export function haversineKm(a, b) {
  const rad = Math.PI / 180;
  const dLat = (b.lat - a.lat) * rad;
  const dLon = (b.lon - a.lon) * rad;
  const s = Math.sin(dLat / 2) ** 2 + Math.cos(a.lat * rad) * Math.cos(b.lat * rad) * Math.sin(dLon / 2) ** 2;
  return 2 * EARTH_RADIUS_KM * Math.asin(Math.min(1, Math.sqrt(s)));
}

/** Road km between two points (great circle × road factor). */
export function roadKm(a, b) {
  return haversineKm(a, b) * rule.roadFactor;
}

const usable = (p) => p != null && Number.isFinite(p.lat) && Number.isFinite(p.lon);

/**
 * The energy check for `order` done by `car` (`{battery_kwh, consumption_kwh_per_100km}`) from
 * `state` (`{lat, lon, soc_pct}`). Once the passengers are on board only the way to the
 * drop-off is left. Answers null when something needed is unknown, else
 * `{km, needKwh, haveKwh, ok}` with `haveKwh` the energy above the reserve.
 */
export function chargeCheck(order, car, state) {
  if (!order || !car || !state || !Number.isFinite(state.soc_pct)) return null;
  const battery = Number(car.battery_kwh);
  const consumption = Number(car.consumption_kwh_per_100km);
  if (!(battery > 0) || !(consumption > 0) || !usable(order.pickup) || !usable(order.dropoff)) return null;
  let km;
  if (order.status === 'picked_up') {
    if (!usable(state)) return null;
    km = roadKm(state, order.dropoff);
  } else {
    // Without a position the way to the pickup is unknown: the trip alone is a lower bound.
    km = (usable(state) ? roadKm(state, order.pickup) : 0) + roadKm(order.pickup, order.dropoff);
  }
  const needKwh = (km * consumption) / 100 * rule.energyMargin;
  const haveKwh = (state.soc_pct / 100) * battery - (rule.reservePct / 100) * battery;
  return { km, needKwh, haveKwh, ok: haveKwh - needKwh >= 0 };
}
