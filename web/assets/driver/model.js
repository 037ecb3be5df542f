// What the driver's page believes, from plain data: the server's orders with the taps still
// waiting to be sent applied on top (the driver sees the result of a tap at once, marked as
// not sent), and the car's state merged from its details and the live feed.

/** The order statuses a driver acts on, in the order their cards come: an assignment waiting
 *  for an answer first (its time runs), then the trip under way, then accepted ones. */
export const ACTIVE = ['assigned', 'picked_up', 'accepted'];

/** Sorts active orders: by the rank above, then by pickup time. */
export function byUrgency(a, b) {
  return ACTIVE.indexOf(a.status) - ACTIVE.indexOf(b.status) || Date.parse(a.pickup_at) - Date.parse(b.pickup_at);
}

/** The status each tap leads from and to. */
const STEP = { accept: ['assigned', 'accepted'], pickup: ['accepted', 'picked_up'], complete: ['picked_up', 'completed'] };

/**
 * `orders` (id → active order) and `doneToday` (id → completed order) as the server has them,
 * with `taps` (oldest first) applied. A tap that no longer fits the order's status changes
 * nothing here (the server will refuse it too). Answers `{active, pending, trips}`: active
 * orders by urgency, the ids changed by a waiting tap, and today's trips `{order, pending}`
 * newest first.
 */
export function applyTaps(orders, doneToday, taps) {
  const view = new Map([...orders].map(([id, o]) => [id, { ...o }]));
  const pending = new Set();
  const done = new Map([...doneToday].map(([id, o]) => [id, { order: o, pending: false }]));
  for (const tap of taps) {
    const o = view.get(tap.order_id);
    if (!o) continue;
    if (tap.action === 'decline' && o.status === 'assigned') {
      view.delete(o.id);
      continue;
    }
    const step = STEP[tap.action];
    if (!step || o.status !== step[0]) continue;
    o.status = step[1];
    pending.add(o.id);
    if (o.status === 'completed') {
      view.delete(o.id);
      done.set(o.id, { order: o, pending: true });
    }
  }
  const active = [...view.values()].sort(byUrgency);
  const trips = [...done.values()].sort((a, b) => Date.parse(b.order.pickup_at) - Date.parse(a.order.pickup_at));
  return { active, pending, trips };
}

const LIVE_FIELDS = ['ts', 'lat', 'lon', 'speed_kmh', 'heading_deg', 'soc_pct', 'status'];

/**
 * The car's state: `vehicle.state` (from `GET /vehicles/{vin}`, with range and odometer) with
 * the fresher fields of `live` (the feed's VehicleState). The feed's status is always the
 * newer one: it knows the car's order duty.
 */
export function mergeCarState(vehicle, live) {
  const base = vehicle?.state ?? null;
  if (!live || (vehicle && live.vin !== vehicle.vin)) return base;
  if (base && Date.parse(live.ts ?? '') < Date.parse(base.ts ?? '')) return { ...base, status: live.status ?? base.status };
  const merged = { ...(base ?? {}) };
  for (const k of LIVE_FIELDS) if (live[k] != null) merged[k] = live[k];
  return merged;
}
