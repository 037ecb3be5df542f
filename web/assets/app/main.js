// The dispatcher's live map page (`/`): signs in, draws the fleet on the map and keeps it
// live from the WebSocket feed, with vehicle, order and alarm lists beside it; orders are
// approved, assigned and canceled from their details card.

import { api, apiOr404, ApiError } from './api.js';
import { getToken, getUser, logout, mountLogin, onSessionChange } from './auth.js';
import { byId, h, replaceChildren } from './dom.js';
import { t, applyStatic, toggleLang, onLangChange } from './i18n.js';
import { LiveFeed } from './live.js';
import { BaseMap, CENTER, ZOOM } from './basemap.js';
import { CarLayer } from './cars.js';
import { StationLayer } from './stations.js';
import { VehicleList, AlarmList } from './panel.js';
import { VehicleDetail } from './detail.js';
import { OrderList, OPEN_STATUSES, FINAL_STATUSES, FILTERS, mayCreate, startOfToday } from './orders.js';
import { OrderDetail } from './order-detail.js';
import { addLegend } from './legend.js';

/** Used until `GET /api/v1/map/config` answers (or when it does not exist). */
const DEFAULT_CONFIG = { tiles: [], low_soc_pct: 20, speed_limit_kmh: 80 };
/** While the live feed is down, the vehicle list is refreshed over plain HTTP this often. */
const FALLBACK_POLL_MS = 15000;
/** Roles that see every unit's cars, and so may narrow the map to one unit. */
const ALL_UNIT_ROLES = new Set(['admin', 'dispatcher', 'auditor']);
const UNIT_FILTER_KEY = 'fleet.unit_filter';

const hooks = {
  /** True once the first live snapshot has been rendered. */
  ready: false,
  /** The car's marker position `[lat, lon]` in WGS-84, or null when it has none. */
  markerPosition: (vin) => page?.cars.position(vin) ?? null,
  /** How many cars the page knows (with or without a position). */
  carCount: () => page?.state.size ?? 0,
  /** Opens the car's details (as a click on its row would). */
  openVehicle: (vin) => page?.pick(vin) ?? Promise.resolve(),
  /** Opens an order's details (as a click on its row would). */
  openOrder: (id) => page?.openOrder(id) ?? Promise.resolve(),
  /** The open order's pins in WGS-84 `{pickup: [lat, lon], dropoff: [lat, lon]}`, or null. */
  orderPins: () => ui?.orderDetail.pinPositions() ?? null,
};
window.__fleet = hooks;

let page = null; // the signed-in session; null while the login view shows
let ui = null; // the map and panels, made once (at the first sign-in) and kept across sessions

function boot() {
  applyStatic(document);
  byId('lang-switch').addEventListener('click', toggleLang);
  byId('logout').addEventListener('click', () => logout());
  onSessionChange((ev) => {
    if (ev.signedIn) startPage();
    else stopPage(ev.reason);
  });
  if (getToken()) startPage();
  else showLogin();
}

let unmountLogin = null;

function showLogin(notice) {
  byId('app-view').hidden = true;
  byId('user-box').hidden = true;
  const view = byId('login-view');
  view.hidden = false;
  unmountLogin?.();
  unmountLogin = mountLogin(view, { notice });
}

function startPage() {
  if (page) return;
  unmountLogin?.();
  unmountLogin = null;
  byId('login-view').hidden = true;
  byId('app-view').hidden = false;
  byId('user-box').hidden = false;
  if (!ui) ui = buildUi();
  else ui.base.map.invalidateSize();
  page = new Page(ui, getUser());
  page.start();
}

function stopPage(reason) {
  if (page) page.stop();
  page = null;
  hooks.ready = false;
  showLogin(reason === 'expired' ? 'session.expired' : undefined);
}

/**
 * The map and panels. Their callbacks go to whichever session is current, so signing out and
 * in again reuses them without stacking up listeners.
 */
function buildUi() {
  const base = new BaseMap(byId('map'));
  const pick = (vin) => page?.pick(vin);
  // A car clicked on the map: chosen for the order being assigned, ignored while the new-order
  // card waits for a point, else its details open.
  const cars = new CarLayer(base.map, (vin) => ui?.orderDetail.pickFromMap(vin) || ui?.orderForm?.arming || page?.pick(vin, { pan: false }));
  const stations = new StationLayer();
  stations.layer.addTo(base.map);
  base.addOverlay('layer.stations', stations.layer);
  const legend = addLegend(base.map, () => page?.config.low_soc_pct ?? DEFAULT_CONFIG.low_soc_pct);
  base.onCrsChange(() => page?.reproject());
  return {
    base,
    cars,
    stations,
    legend,
    vehicleList: new VehicleList({
      list: byId('vehicle-list'), search: byId('vehicle-search'), count: byId('vehicle-count'), onPick: pick,
    }),
    alarmList: new AlarmList({ list: byId('alarm-list'), badge: byId('alarm-badge'), onPick: pick }),
    orderList: new OrderList({
      list: byId('order-list'),
      chips: byId('order-filters'),
      badge: byId('order-badge'),
      unitName: (id) => page?.unitName(id) ?? id,
      plateOf: (vin) => page?.plateOf(vin) ?? vin,
      driverName: (id) => page?.drivers.get(id)?.name ?? id,
      onOpen: (id) => page?.openOrder(id),
    }),
    orderDetail: new OrderDetail({
      map: base.map,
      user: () => page?.user ?? {},
      cars: () => [...(page?.state.values() ?? [])],
      unitName: (id) => page?.unitName(id) ?? id,
      plateOf: (vin) => page?.plateOf(vin) ?? vin,
      driver: (id) => page?.drivers.get(id) ?? null,
      vehicle: (vin) => page?.registry.get(vin) ?? null,
      lowSoc: () => page?.config.low_soc_pct ?? DEFAULT_CONFIG.low_soc_pct,
      onChanged: (order) => page?.orderList.upsert(order),
      onSelect: (id) => page?.orderList.select(id),
      cover: () => coverOf(byId('order-detail'), base.map),
    }),
    orderForm: null, // loaded at its first use
    detail: new VehicleDetail({
      map: base.map,
      liveCar: (vin) => page?.state.get(vin),
      unitName: (id) => page?.unitName(id) ?? id,
      onClose: () => page?.select(null),
    }),
    tabs: setupTabs(),
    unitFilter: setupUnitFilter(),
    newOrder: setupNewOrder(),
  };
}

/** The new-order card: its module is fetched at the first click (most sessions never book). */
function setupNewOrder() {
  const button = byId('order-new');
  button.addEventListener('click', async () => {
    if (!ui.orderForm) {
      const { OrderForm } = await import('./order-form.js');
      ui.orderForm ??= new OrderForm({
        map: ui.base.map,
        user: () => page?.user ?? {},
        units: () => page?.bookableUnits() ?? [],
        onCreated: (order) => page?.orderCreated(order),
        onOpen: () => page?.clearCards(),
      });
    }
    if (page) ui.orderForm.open();
  });
  return button;
}

/**
 * The part of the map a card hides (its width at the left, or its height at the bottom) and
 * the open legend's width at the right.
 */
function coverOf(card, map) {
  const legend = document.getElementById('map-legend');
  const right = legend && !legend.classList.contains('collapsed') ? legend.offsetWidth + 10 : 0;
  if (card.hidden) return { left: 0, bottom: 0, right };
  const panel = card.getBoundingClientRect();
  const box = map.getContainer().getBoundingClientRect();
  if (panel.width >= box.width * 0.9) return { left: 0, bottom: Math.max(0, box.bottom - panel.top), right };
  return { left: Math.max(0, panel.right - box.left), bottom: 0, right };
}

function setupTabs() {
  const tabs = [...document.querySelectorAll('#side-tabs [role=tab]')];
  const show = (tab) => {
    for (const other of tabs) {
      const on = other === tab;
      other.setAttribute('aria-selected', String(on));
      other.tabIndex = on ? 0 : -1;
      byId(other.getAttribute('aria-controls')).hidden = !on;
    }
  };
  for (const tab of tabs) tab.addEventListener('click', () => show(tab));
  byId('side-tabs').addEventListener('keydown', (ev) => {
    const i = tabs.indexOf(document.activeElement);
    if (i < 0 || (ev.key !== 'ArrowRight' && ev.key !== 'ArrowLeft')) return;
    const next = tabs[(i + (ev.key === 'ArrowRight' ? 1 : tabs.length - 1)) % tabs.length];
    show(next);
    next.focus();
  });
  show(tabs.find((x) => x.getAttribute('aria-selected') === 'true') ?? tabs[0]);
  return { show };
}

function setupUnitFilter() {
  const select = byId('unit-filter');
  select.addEventListener('change', () => page?.setUnitFilter(select.value));
  return select;
}

/** One signed-in session: its data, its live feed and its timers. */
class Page {
  constructor(shell, user) {
    this.ui = shell;
    this.base = shell.base;
    this.map = shell.base.map;
    this.cars = shell.cars;
    this.stations = shell.stations;
    this.vehicleList = shell.vehicleList;
    this.alarmList = shell.alarmList;
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
    this.alarmsDirty = false;
    this.snapshots = 0; // live snapshots received in this session
    this.connTicker = null;
    this.connLabel = null;
    this.live = new LiveFeed({
      params: this.liveParams(),
      onMessage: (msg) => this.onLive(msg),
      onState: (state, retryAt) => this.onConnState(state, retryAt),
      onDrop: () => this.checkSession(),
    });
  }

  start() {
    byId('user-name').textContent = this.user.username ?? '';
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
  }

  stop() {
    this.live.stop();
    for (const id of this.timers) clearInterval(id);
    clearInterval(this.connTicker);
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
      if (page !== this) return;
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
      if (page !== this) return;
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
    if (page !== this) return;
    this.drivers = new Map((drivers?.drivers ?? []).map((d) => [d.id, d]));
    const bound = new Set((drivers?.drivers ?? []).map((d) => d.vehicle_vin).filter(Boolean));
    this.registry = new Map((vehicles?.vehicles ?? []).map((v) => [v.vin, {
      plate: v.plate, seats: v.seats, hasDriver: drivers ? bound.has(v.vin) : null,
    }]));
    this.orderList.render();
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
      if (page !== this) return;
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
      if (page !== this) return;
      this.orderList.replaceAll(open == null ? null : [...(open.orders ?? []), ...(done?.orders ?? [])]);
    } catch (e) {
      if (page !== this) return;
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
      if (page !== this || this.snapshots !== before || (this.live.state === 'open' && hooks.ready)) return;
      const cars = (res?.vehicles ?? []).filter((c) => this.inFilter(c));
      this.replaceCars(cars);
    } catch (e) {
      if (!(e instanceof ApiError) || e.status !== 401) console.warn('vehicle states unavailable', e);
    }
  }

  /** The live feed dropped: if the token is no longer valid the 401 ends the session. */
  async checkSession() {
    try {
      await api('/me');
    } catch {
      /* 401 → expireSession() in api(); anything else: the feed keeps retrying */
    }
  }

  // ---- live feed ----

  onLive(msg) {
    if (page !== this || !msg) return;
    if (msg.type === 'snapshot' && Array.isArray(msg.vehicles)) {
      this.snapshots += 1;
      this.replaceCars(msg.vehicles);
      hooks.ready = true;
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

  onConnState(state, retryAt) {
    const el = byId('conn-status');
    el.dataset.state = state;
    clearInterval(this.connTicker);
    this.connTicker = null;
    const label = () => {
      if (state === 'closed' && retryAt) {
        const seconds = Math.max(0, Math.ceil((retryAt - Date.now()) / 1000));
        byId('conn-label').textContent = t('conn.retry', { seconds });
      } else {
        byId('conn-label').textContent = t(`conn.${state}`);
      }
    };
    this.connLabel = label;
    label();
    if (state === 'closed' && retryAt) this.connTicker = setInterval(label, 1000);
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
    hooks.ready = false;
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
    const role = this.user.role;
    byId('user-role').textContent = role ? t(`role.${role}`) : '';
    this.connLabel?.();
    this.fillUnitFilter();
    this.vehicleList.replaceAll([...this.state.values()]);
    this.alarmList.update([...this.state.values()], this.limits(), true);
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

boot();
