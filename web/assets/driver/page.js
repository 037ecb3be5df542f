// One signed-in driver's session on `/driver`: the data (car, active orders, today's trips),
// the live feed that keeps it current, the tap queue that sends the driver's actions, and
// what happens when an order arrives or leaves. `screen.js` draws it; `main.js` makes one
// per sign-in.

import { api, ApiError } from '../lib/api.js';
import { byId } from '../lib/dom.js';
import { t, applyStatic } from '../lib/i18n.js';
import { LiveFeed } from '../lib/live.js';
import { TapQueue } from './queue.js';
import { DeclineSheet } from './decline.js';
import { alertNewOrder, armed, onArmed } from './alert.js';
import { setRule } from './charge.js';
import { syncClock, serverNow, todayRange, monthRange } from './clock.js';
import { ACTIVE, applyTaps, mergeCarState } from './model.js';
import { notice, dismissNotice, relabelNotice } from './notice.js';
import { readCopy, writeCopy } from './offline.js';
import { Screen } from './screen.js';

/** Used until `GET /api/v1/map/config` answers. */
const DEFAULT_ACCEPT_TIMEOUT_S = 30;
/** The car's details (odometer, range) are fetched again at most this often while it moves. */
const CAR_REFRESH_MS = 30000;
/** After the accept deadline, if the feed has not said the order left, ask once (a lost
 *  message must not leave a dead card). */
const EXPIRY_GRACE_MS = 4000;
/** After a tap, the order's buttons ignore taps this long. */
const TAP_LOCK_MS = 800;

const route = (o) => ({ pickup: o.pickup?.name ?? '', dropoff: o.dropoff?.name ?? '' });

/** One signed-in session. */
export class Page {
  /**
   * @param {object} user  the signed-in user (`driver_id` names the driver)
   * @param {object} o
   * @param {() => void} o.onReady  the first load is on screen
   */
  constructor(user, { onReady }) {
    this.user = user;
    this.onReady = onReady;
    this.alive = true;
    this.driverId = user.driver_id ?? null;
    this.acceptTimeoutS = DEFAULT_ACCEPT_TIMEOUT_S;
    this.orders = new Map(); // id → order, as the server last said, active ones only
    this.doneToday = new Map(); // id → completed order (today, Asia/Shanghai)
    this.monthCount = null;
    this.vehicle = null; // GET /vehicles/{vin}: registry fields and `state`
    this.liveState = null; // the car's VehicleState from the feed
    this.units = new Map(); // id → name, when the API lets a driver see it
    this.unitsForbidden = false;
    this.alerted = new Set(); // `${id}@${assigned_at}` already announced
    this.seeded = false; // the first order list is in: later unknown assignments are new
    this.tapLocked = false;
    this.tapLockTimer = null;
    this.firstRendered = false;
    this.loaded = false; // the first answer (or the offline copy) is in
    this.stale = null; // time of the cached data on screen when the server cannot be reached
    this.ordersSeq = 0;
    this.carFetchedAt = 0;
    this.expiryChecked = new Set();
    this.declined = new Set(); // orders this driver declined here: their leaving is expected
    this.timers = [];
    this.stops = [];
    this.screen = new Screen(this);
    this.sheet = new DeclineSheet((id, reason) => this.tap(id, 'decline', reason));
    this.queue = new TapQueue({
      userId: user.id ?? user.username,
      onDone: (tap, order) => this.tapDone(tap, order),
      onDropped: (tap, e) => this.tapDropped(tap, e),
      onChange: () => this.screen.render(),
    });
    this.live = new LiveFeed({
      onMessage: (msg) => this.onLive(msg),
      onState: (state) => this.screen.showConn(state),
    });
  }

  get isDriver() {
    return this.user.role === 'driver' && this.driverId != null;
  }

  async start() {
    this.relabel();
    this.screen.showConn('connecting');
    const onOnline = () => this.screen.renderBanner();
    // A socket does not notice a lost signal for minutes: start over (the feed retries with
    // backoff, and reconnects at once on `online`).
    const onOffline = () => {
      this.screen.renderBanner();
      if (this.isDriver) this.live.connectNow();
    };
    // Back from a sleeping screen: anything may have been missed.
    const onVisible = () => {
      if (document.visibilityState === 'visible' && this.isDriver && this.firstRendered) this.resync();
    };
    window.addEventListener('online', onOnline);
    window.addEventListener('offline', onOffline);
    document.addEventListener('visibilitychange', onVisible);
    this.stops.push(
      () => window.removeEventListener('online', onOnline),
      () => window.removeEventListener('offline', onOffline),
      () => document.removeEventListener('visibilitychange', onVisible),
    );
    const hint = byId('sound-hint');
    hint.hidden = armed();
    this.stops.push(onArmed(() => {
      hint.hidden = true;
    }));
    if (!this.isDriver) {
      this.screen.render();
      this.onReady();
      return;
    }
    // The last data seen, on screen at once: a slow network must not leave the driver blind.
    const cached = readCopy(this.user);
    if (cached) {
      this.applyCache(cached);
      this.loaded = true;
      this.screen.render();
    }
    this.queue.start();
    this.live.start();
    const [, ...results] = await Promise.allSettled([syncClock(), this.loadConfig(), this.loadCar(), this.loadOrders(), this.loadTrips()]);
    if (!this.alive) return;
    const unreachable = results.some((r) => r.status === 'rejected');
    this.stale = unreachable && cached ? cached.at : null;
    if (!unreachable) this.writeCache();
    this.screen.render();
    this.onReady();
    this.timers.push(setInterval(() => this.tick(), 1000));
    // Leaflet and the land outline come after the first render, once a card shows the map.
    this.firstRendered = true;
    setTimeout(() => this.screen.startMap(), 50);
  }

  stop() {
    this.alive = false;
    this.live.stop();
    this.queue.stop();
    this.sheet.close();
    for (const id of this.timers) clearInterval(id);
    clearTimeout(this.tapLockTimer);
    for (const stop of this.stops) stop();
    this.screen.clear();
  }

  // ---- loading ----

  async loadConfig() {
    const cfg = await api('/map/config');
    if (Number.isFinite(cfg?.accept_timeout_s)) this.acceptTimeoutS = cfg.accept_timeout_s;
    setRule(cfg?.dispatch);
  }

  async loadCar() {
    const driver = await api(`/drivers/${encodeURIComponent(this.driverId)}`);
    this.carFetchedAt = Date.now();
    if (!driver?.vehicle_vin) {
      this.vehicle = null;
      return;
    }
    this.vehicle = await api(`/vehicles/${encodeURIComponent(driver.vehicle_vin)}`);
    if (this.alive) this.screen.renderCar();
  }

  /** Reloads the car's details now and then while it moves (range, odometer are not in the feed). */
  maybeRefreshCar() {
    if (Date.now() - this.carFetchedAt < CAR_REFRESH_MS) return;
    this.carFetchedAt = Date.now();
    this.loadCar().catch(() => {});
  }

  async loadOrders() {
    const seq = ++this.ordersSeq;
    const { orders } = await api('/orders', { query: { status: ACTIVE.join(',') } });
    if (!this.alive || seq !== this.ordersSeq) return; // a newer load is on its way
    const fresh = new Map();
    for (const o of orders ?? []) if (o.driver_id === this.driverId && ACTIVE.includes(o.status)) fresh.set(o.id, o);
    for (const [id, old] of this.orders) {
      if (!fresh.has(id)) this.left(old, null);
    }
    this.orders = fresh;
    for (const o of fresh.values()) this.maybeAlert(o);
    this.seeded = true;
    this.loaded = true;
    this.screen.render();
  }

  async loadTrips() {
    const today = todayRange();
    const month = monthRange();
    const [day, mon] = await Promise.all([
      api('/orders', { query: { status: 'completed', from: today.from, to: today.to } }),
      api('/orders', { query: { status: 'completed', from: month.from, to: month.to, limit: 5000 } }),
    ]);
    if (!this.alive) return;
    this.doneToday = new Map((day?.orders ?? []).map((o) => [o.id, o]));
    this.monthCount = (mon?.orders ?? []).length;
    this.screen.renderTrips();
  }

  async loadUnit(id) {
    if (this.unitsForbidden || this.units.has(id)) return;
    this.units.set(id, null); // asked once
    try {
      const unit = await api(`/units/${encodeURIComponent(id)}`);
      if (unit?.name) this.units.set(id, unit.name);
      this.screen.render();
    } catch (e) {
      // Drivers may not see units (403): the card shows the unit's id.
      if (e instanceof ApiError && e.status === 403) this.unitsForbidden = true;
      else this.units.delete(id);
    }
  }

  unitName(id) {
    const name = this.units.get(id);
    if (name == null) this.loadUnit(id);
    return name ? t('drv.unit.named', { name, id }) : id;
  }

  // ---- offline copy of the last data ----

  applyCache(c) {
    this.orders = new Map(c.orders.map((o) => [o.id, o]));
    this.doneToday = new Map((c.done ?? []).filter((o) => Date.parse(o.pickup_at) >= Date.parse(todayRange().from)).map((o) => [o.id, o]));
    this.monthCount = c.month ?? null;
    this.vehicle = c.vehicle ?? null;
    if (Number.isFinite(c.accept_timeout_s)) this.acceptTimeoutS = c.accept_timeout_s;
    for (const o of this.orders.values()) if (o.status === 'assigned') this.alerted.add(`${o.id}@${o.assigned_at}`);
  }

  writeCache() {
    writeCopy(this.user, {
      at: new Date().toISOString(),
      orders: [...this.orders.values()],
      done: [...this.doneToday.values()],
      month: this.monthCount,
      vehicle: this.vehicle && { ...this.vehicle, state: this.carState() },
      accept_timeout_s: this.acceptTimeoutS,
    });
  }

  // ---- live feed ----

  onLive(msg) {
    if (!this.alive || !msg) return;
    if (msg.type === 'snapshot' && Array.isArray(msg.vehicles)) {
      this.liveState = msg.vehicles[0] ?? null;
      this.screen.renderCar();
      // Order changes sent while disconnected were missed.
      this.resync();
    } else if (msg.type === 'positions' && Array.isArray(msg.vehicles)) {
      const mine = msg.vehicles.find((v) => !this.vehicle || v.vin === this.vehicle.vin);
      if (!mine) return;
      this.liveState = mine;
      this.screen.renderCar();
      this.screen.updateDistance();
      this.maybeRefreshCar();
    } else if (msg.type === 'order' && msg.order) {
      this.orderChanged(msg.order);
      this.writeCache();
    }
  }

  /** Catches up with the server (orders, trips, car) and sends the waiting taps. */
  resync() {
    this.queue.flush();
    this.loadOrders().then(() => {
      this.stale = null;
      this.writeCache();
      this.screen.renderBanner();
    }, () => {});
    this.loadTrips().catch(() => {});
    this.loadCar().catch(() => {});
  }

  /** An order as the server now has it (from the feed or an action's answer). */
  orderChanged(o) {
    const had = this.orders.get(o.id);
    if (o.driver_id === this.driverId && ACTIVE.includes(o.status)) {
      this.orders.set(o.id, o);
      this.maybeAlert(o);
    } else {
      if (had) {
        this.orders.delete(o.id);
        this.left(had, o);
      }
      if (o.status === 'completed' && o.driver_id === this.driverId) {
        this.doneToday.set(o.id, o);
        this.loadTrips().catch(() => {});
      }
    }
    this.screen.render();
  }

  /** An order left the driver: says why, unless the driver did it here. */
  left(before, after) {
    if (this.sheet.openFor === before.id) this.sheet.close();
    if (this.declined.has(before.id) || after?.status === 'completed') return;
    const vars = route(before);
    const dl = this.deadline(before);
    if (after?.status === 'canceled' || after?.status === 'rejected') notice('drv.notice.canceled', vars);
    else if (!after) notice('drv.notice.gone', vars);
    else if (before.status === 'assigned' && after.status === 'approved' && dl != null && serverNow() >= dl - 1000) notice('drv.notice.expired', vars);
    else notice('drv.notice.reassigned', vars);
  }

  maybeAlert(o) {
    if (o.status !== 'assigned') return;
    const key = `${o.id}@${o.assigned_at}`;
    if (this.alerted.has(key)) return;
    this.alerted.add(key);
    if (!this.seeded) return; // already waiting when the page opened: shown, not rung
    alertNewOrder();
    notice('drv.notice.new', route(o));
  }

  // ---- taps ----

  /** A tap on an order's button. */
  onAction(order, action) {
    if (this.tapLocked) return;
    if (action === 'decline') {
      this.sheet.open(order.id);
      return;
    }
    this.tap(order.id, action, null);
  }

  tap(orderId, action, reason) {
    // The next step's button appears where the finger just was: a double tap must not accept
    // and report the pickup at once. The buttons stay grey for a moment.
    this.tapLocked = true;
    clearTimeout(this.tapLockTimer);
    this.tapLockTimer = setTimeout(() => {
      this.tapLocked = false;
      this.screen.render();
    }, TAP_LOCK_MS);
    dismissNotice('drv.notice.new'); // answered
    if (action === 'decline') this.declined.add(orderId);
    this.queue.add(orderId, action, reason);
  }

  tapDone(tap, order) {
    if (order?.id) this.orderChanged(order);
    if (tap.action === 'decline') notice('drv.notice.declined');
    if (tap.action === 'complete') this.loadTrips().catch(() => {});
    this.loadCar().catch(() => {});
    this.writeCache();
  }

  tapDropped(tap, e) {
    const before = this.orders.get(tap.order_id);
    const vars = before ? route(before) : { pickup: '', dropoff: '' };
    if (e instanceof ApiError && (e.code === 'invalid_transition' || e.status === 404 || e.status === 409)) {
      notice('drv.notice.moved', vars);
    } else {
      notice('drv.notice.failed', { message: e?.message ?? String(e) });
    }
    this.declined.delete(tap.order_id);
    this.loadOrders().catch(() => {});
  }

  // ---- what is shown ----

  /** The server's orders with the waiting taps applied: what the driver expects to see. */
  view() {
    return applyTaps(this.orders, this.doneToday, this.queue.list());
  }

  deadline(o) {
    const at = Date.parse(o.assigned_at ?? '');
    return Number.isFinite(at) ? at + this.acceptTimeoutS * 1000 : null;
  }

  /** The car's state: the details' state, with the feed's fresher position, charge and status. */
  carState() {
    return mergeCarState(this.vehicle, this.liveState);
  }

  relabel() {
    applyStatic(document);
    relabelNotice();
    this.screen.showConn(this.screen.connState);
    if (this.sheet.openFor) this.sheet.render();
    this.screen.render();
  }

  /** Every second: the countdowns; an order past its deadline is asked about once. */
  tick() {
    for (const { id, deadline } of this.screen.tick()) {
      if (serverNow() > deadline + EXPIRY_GRACE_MS && !this.expiryChecked.has(id)) {
        this.expiryChecked.add(id);
        this.loadOrders().catch(() => {});
      }
    }
  }
}
