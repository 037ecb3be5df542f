// One signed-in session of the dispatcher's page: its data (cars, units, drivers, orders,
// stations, map settings), the live feed that keeps the cars current, the plain-HTTP polling
// while the feed is down, and the selection of a car or an order. `main.js` makes one per
// sign-in over the widgets of `ui.js`.

import { api, apiOr404, ApiError } from '../lib/api.js';
import { byId, h, replaceChildren } from '../lib/dom.js';
import { t, onLangChange } from '../lib/i18n.js';
import { LiveFeed } from '../lib/live.js';
import { CENTER, ZOOM } from '../lib/basemap.js';
import { ConnStatus } from './conn.js';
import { OPEN_STATUSES, FINAL_STATUSES, FILTERS, mayCreate, startOfToday } from './orders.js';
import { DEFAULT_CONFIG } from './ui.js';
import { CENTRE_POLL_MS } from './alarm-centre.js';

/** While the live feed is down, the vehicle list is refreshed over plain HTTP this often. */
const FALLBACK_POLL_MS = 15000;
/** Roles that see every unit's cars, and so may narrow the map to one unit. */
const ALL_UNIT_ROLES = new Set(['admin', 'dispatcher', 'auditor']);
const UNIT_FILTER_KEY = 'fleet.unit_filter';

/** One signed-in session: its data, its live feed and its timers. */
export class Page {
  constructor(shell, user) {
    this.ui = shell;
    this.base = shell.base;
    this.map = shell.base.map;
    this.cars = shell.cars;
    this.stations = shell.stations;
    this.vehicleList = shell.vehicleList;
    this.alarmList = shell.alarmList;
    this.alarmCentre = shell.alarmCentre;
    this.orderList = shell.orderList;
    this.orderDetail = shell.orderDetail;
    this.detail = shell.detail;
    this.user = user ?? {};
    this.drivers = new Map(); // id → {name, phone, vehicle_vin}
    this.registry = new Map(); // vin → {plate, seats, hasDriver}
    this.config = { ...DEFAULT_CONFIG };
    this.state = new Map(); // vin → VehicleState (WGS-84, as received)
    this.units = new Map(); // id → name
    this.unitFilter = ALL_UNIT_ROLES.has(this.user.role) ? readSession(UNIT_FILTER_KEY) : '';
    this.timers = [];
    this.stops = [];
    this.alive = true;
    /** True once the first live snapshot has been rendered (and again after each resync). */
    this.ready = false;
    this.alarmsDirty = false;
    this.snapshots = 0; // live snapshots received in this session
    this.conn = new ConnStatus(byId('conn-status'), byId('conn-label'));
    this.live = new LiveFeed({
      params: this.liveParams(),
      onMessage: (msg) => this.onLive(msg),
      onState: (state, retryAt) => this.conn.show(state, retryAt),
    });
  }

  start() {
    byId('unit-filter-wrap').hidden = !ALL_UNIT_ROLES.has(this.user.role);
    this.ui.newOrder.hidden = !mayCreate(this.user);
    this.orderList.setUnitFilter(this.unitFilter);
    this.stops.push(onLangChange(() => this.relabel()));
    this.relabel();
    this.live.start();
    this.loadConfig();
    this.loadUnits();
    this.loadStations();
    this.loadOrders();
    this.loadRegistry();
    // The HTTP list shows the fleet at once, before (or without) the live feed.
    this.pollStates();
    this.timers.push(setInterval(() => {
      if (this.live.state !== 'open') this.pollStates();
    }, FALLBACK_POLL_MS));
    this.timers.push(setInterval(() => this.flushAlarms(), 500));
    this.alarmCentre.setUser(this.user);
    this.alarmCentre.load();
    this.timers.push(setInterval(() => this.alarmCentre.load(), CENTRE_POLL_MS));
  }

  stop() {
    this.alive = false;
    this.ready = false;
    this.live.stop();
    for (const id of this.timers) clearInterval(id);
    this.conn.stop();
    for (const stop of this.stops) stop();
    this.detail.close();
    this.orderDetail.close();
    this.ui.orderForm?.close();
    this.cars.clear();
    this.cars.setAlarms(new Set());
    this.state.clear();
    const search = byId('vehicle-search');
    search.value = '';
    search.dispatchEvent(new Event('input'));
    this.vehicleList.replaceAll([]);
    this.alarmList.update([], this.limits(), true);
    this.alarmCentre.clear();
    this.orderList.setUnitFilter(null);
    this.orderList.clear();
    this.stations.set([]);
    this.base.setTiles([]);
    this.map.setView(CENTER, ZOOM, { animate: false });
  }

  limits() {
    return { lowSoc: this.config.low_soc_pct, speedLimit: this.config.speed_limit_kmh };
  }

  liveParams() {
    return this.unitFilter ? { unit_id: this.unitFilter } : {};
  }

  unitName(id) {
    if (!id) return t('unit.none');
    return this.units.get(id) ?? id;
  }

  // ---- loading ----

  async loadConfig() {
    try {
      const cfg = await apiOr404('/map/config', DEFAULT_CONFIG);
      if (!this.alive) return;
      this.config = {
        tiles: Array.isArray(cfg?.tiles) ? cfg.tiles : [],
        low_soc_pct: Number.isFinite(cfg?.low_soc_pct) ? cfg.low_soc_pct : DEFAULT_CONFIG.low_soc_pct,
        speed_limit_kmh: Number.isFinite(cfg?.speed_limit_kmh) ? cfg.speed_limit_kmh : DEFAULT_CONFIG.speed_limit_kmh,
      };
    } catch (e) {
      if (!(e instanceof ApiError) || e.status === 401) return;
      console.warn('map config unavailable, using defaults', e);
    }
    this.cars.setLowSoc(this.config.low_soc_pct);
    this.vehicleList.setLowSoc(this.config.low_soc_pct);
    this.base.setTiles(this.config.tiles);
    this.ui.legend.refresh();
    this.renderAllCars();
  }

  async loadUnits() {
    try {
      const res = await api('/units');
      if (!this.alive) return;
      this.units = new Map((res?.units ?? []).map((u) => [u.id, u.name]));
      this.fillUnitFilter();
      this.orderList.render();
      this.detail.render();
      this.orderDetail.render();
      this.ui.orderForm?.relabel();
    } catch (e) {
      // A driver may not list units (403): ids are shown in place of names.
      if (!(e instanceof ApiError) || e.status !== 403) console.warn('units unavailable', e);
    }
  }

  /** Drivers (names on orders, which cars have one) and the registry (plates, seats). */
  async loadRegistry() {
    const [drivers, vehicles] = await Promise.all([
      api('/drivers').catch(() => null),
      api('/vehicles').catch(() => null),
    ]);
    if (!this.alive) return;
    this.drivers = new Map((drivers?.drivers ?? []).map((d) => [d.id, d]));
    const bound = new Set((drivers?.drivers ?? []).map((d) => d.vehicle_vin).filter(Boolean));
    this.registry = new Map((vehicles?.vehicles ?? []).map((v) => [v.vin, {
      plate: v.plate, seats: v.seats, hasDriver: drivers ? bound.has(v.vin) : null,
    }]));
    this.orderList.render();
    this.alarmCentre.render();
    this.orderDetail.render();
  }

  plateOf(vin) {
    return this.state.get(vin)?.plate ?? this.registry.get(vin)?.plate ?? vin;
  }

  /** Units one may book for: every unit (staff), or one's own. */
  bookableUnits() {
    const own = this.user.role === 'unit' ? this.user.unit_id : null;
    const all = [...this.units.entries()].sort((a, b) => a[0].localeCompare(b[0]));
    if (!own) return all;
    return [[own, this.unitName(own)]];
  }

  // ---- orders ----

  /** Opens an order's card (closing the car's), and its pins on the map. */
  openOrder(id) {
    this.detail.close();
    this.ui.orderForm?.close();
    return this.orderDetail.open(id, this.orderList.get(id));
  }

  orderCreated(order) {
    this.orderList.upsert(order);
    const filter = Object.keys(FILTERS).find((f) => FILTERS[f](order));
    if (filter) this.orderList.setFilter(filter);
    this.ui.tabs.show(byId('tab-orders'));
    this.openOrder(order.id);
  }

  /** Closes every card over the map (before another one opens). */
  clearCards() {
    this.detail.close();
    this.orderDetail.close();
    this.ui.orderForm?.close();
  }

  async loadStations() {
    try {
      const res = await api('/charging-stations');
      if (!this.alive) return;
      this.stations.set(res?.charging_stations ?? res?.stations ?? []);
    } catch (e) {
      console.warn('charging stations unavailable', e);
    }
  }

  /** The open orders, and those picked up today that are finished (the "done today" chip). */
  async loadOrders() {
    try {
      const [open, done] = await Promise.all([
        apiOr404('/orders', null, { query: { status: OPEN_STATUSES.join(','), limit: 5000 } }),
        apiOr404('/orders', null, { query: { status: FINAL_STATUSES.join(','), from: startOfToday().toISOString(), limit: 1000 } }),
      ]);
      if (!this.alive) return;
      this.orderList.replaceAll(open == null ? null : [...(open.orders ?? []), ...(done?.orders ?? [])]);
    } catch (e) {
      if (!this.alive) return;
      // A role without access to orders sees an empty list rather than an error.
      if (e instanceof ApiError && e.status === 403) this.orderList.replaceAll([]);
      else console.warn('orders unavailable', e);
    }
  }

  async pollStates() {
    const before = this.snapshots;
    try {
      const res = await api('/vehicles/states');
      // A snapshot that arrived meanwhile, or a live connection in sync, is fresher.
      if (!this.alive || this.snapshots !== before || (this.live.state === 'open' && this.ready)) return;
      const cars = (res?.vehicles ?? []).filter((c) => this.inFilter(c));
      this.replaceCars(cars);
    } catch (e) {
      if (!(e instanceof ApiError) || e.status !== 401) console.warn('vehicle states unavailable', e);
    }
  }

  // ---- live feed ----

  onLive(msg) {
    if (!this.alive || !msg) return;
    if (msg.type === 'snapshot' && Array.isArray(msg.vehicles)) {
      this.snapshots += 1;
      this.replaceCars(msg.vehicles);
      this.ready = true;
      // Order changes sent while disconnected were missed: a resync reloads the list too.
      if (this.snapshots > 1) {
        this.loadOrders();
        this.orderDetail.load();
      }
    } else if (msg.type === 'positions' && Array.isArray(msg.vehicles)) {
      for (const car of msg.vehicles) this.updateCar(car);
      this.alarmsDirty = true;
    } else if (msg.type === 'order' && msg.order) {
      this.orderList.upsert(msg.order);
      this.orderDetail.changed(msg.order);
    }
  }

  replaceCars(cars) {
    this.state = new Map(cars.filter((c) => c && c.vin).map((c) => [c.vin, c]));
    this.renderAllCars();
    if (this.detail.vin) this.detail.liveUpdate(this.state.get(this.detail.vin) ?? { vin: this.detail.vin });
  }

  renderAllCars() {
    const cars = [...this.state.values()];
    this.cars.replaceAll(cars);
    this.vehicleList.replaceAll(cars);
    this.alarmsDirty = true;
    this.flushAlarms();
  }

  updateCar(car) {
    if (!car || !car.vin) return;
    this.state.set(car.vin, car);
    this.cars.upsert(car);
    this.vehicleList.update(car);
    this.detail.liveUpdate(car);
  }

  /** Alarms are recomputed at most twice a second, not on every position. */
  flushAlarms(force = false) {
    if (!this.alarmsDirty && !force) return;
    this.alarmsDirty = false;
    const vins = this.alarmList.update([...this.state.values()], this.limits(), force);
    this.cars.setAlarms(vins);
  }

  // ---- selection ----

  /** Focuses a car: pans to it (unless clicked on the map), highlights it, opens details. */
  pick(vin, { pan = true } = {}) {
    this.orderDetail.close();
    this.ui.orderForm?.close();
    this.select(vin);
    const opened = this.detail.open(vin); // shows the panel at once, so its size is known
    if (pan) this.cars.focus(vin, this.detail.cover());
    return opened;
  }

  select(vin) {
    this.cars.select(vin);
    this.vehicleList.select(vin);
    if (vin) {
      const row = document.querySelector(`#vehicle-list li[data-vin="${CSS.escape(vin)}"]`);
      if (row && !row.hidden) row.scrollIntoView({ block: 'nearest' });
    }
  }

  reproject() {
    this.cars.reproject();
    this.stations.reproject();
    this.detail.reproject();
    this.orderDetail.reproject();
    this.ui.orderForm?.reproject();
  }

  // ---- chrome ----

  /** Narrows the map to one unit (dispatchers): the feed reconnects with `unit_id`. */
  setUnitFilter(unitId) {
    this.unitFilter = unitId;
    writeSession(UNIT_FILTER_KEY, unitId);
    this.orderList.setUnitFilter(unitId);
    this.ready = false;
    // The new snapshot replaces every car; the others go now so none linger meanwhile.
    this.replaceCars([...this.state.values()].filter((c) => this.inFilter(c)));
    this.live.setParams(this.liveParams());
    if (this.live.state !== 'open') this.pollStates();
  }

  /** A car's unit is only known from feeds that send it; unknown ones are kept. */
  inFilter(car) {
    return !this.unitFilter || car.unit_id == null || car.unit_id === this.unitFilter;
  }

  fillUnitFilter() {
    const select = byId('unit-filter');
    const units = [...this.units.entries()].sort((a, b) => a[0].localeCompare(b[0]));
    if (this.unitFilter && !this.units.has(this.unitFilter)) units.push([this.unitFilter, this.unitFilter]);
    replaceChildren(select,
      h('option', { value: '' }, t('unit.all')),
      units.map(([id, name]) => h('option', { value: id }, name)));
    select.value = this.unitFilter;
  }

  relabel() {
    this.conn.relabel();
    this.fillUnitFilter();
    this.vehicleList.replaceAll([...this.state.values()]);
    this.alarmList.update([...this.state.values()], this.limits(), true);
    this.alarmCentre.render();
    this.orderList.render();
    this.detail.relabel();
    this.orderDetail.render();
    this.ui.orderForm?.relabel();
  }
}

function readSession(key) {
  try {
    return sessionStorage.getItem(key) ?? '';
  } catch {
    return '';
  }
}

function writeSession(key, value) {
  try {
    sessionStorage.setItem(key, value);
  } catch {
    /* not remembered */
  }
}
