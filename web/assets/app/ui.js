// The dispatcher page's widgets: the map with its car, station and legend layers, the vehicle,
// order and alarm lists, the details cards, the tabs and the unit filter. They are made once,
// at the first sign-in, and kept across sessions: their callbacks go to whichever session is
// current, so signing out and in again reuses them without stacking up listeners.

import { BaseMap } from '../lib/basemap.js';
import { byId } from '../lib/dom.js';
import { CarLayer } from './cars.js';
import { VehicleDetail } from './detail.js';
import { addLegend } from './legend.js';
import { OrderDetail } from './order-detail.js';
import { OrderList } from './orders.js';
import { VehicleList, AlarmList } from './panel.js';
import { AlarmCentre } from './alarm-centre.js';
import { StationLayer } from './stations.js';

/** Used until `GET /api/v1/map/config` answers (or when it does not exist). */
export const DEFAULT_CONFIG = { tiles: [], low_soc_pct: 20, speed_limit_kmh: 80 };

/** Makes the widgets; `current()` is the signed-in session (a Page), or null. */
export function buildUi(current) {
  const base = new BaseMap(byId('map'));
  const pick = (vin) => current()?.pick(vin);
  const ui = {};
  // A car clicked on the map: chosen for the order being assigned, ignored while the new-order
  // card waits for a point, else its details open.
  const cars = new CarLayer(base.map, (vin) => ui.orderDetail.pickFromMap(vin) || ui.orderForm?.arming || current()?.pick(vin, { pan: false }));
  const stations = new StationLayer();
  stations.layer.addTo(base.map);
  base.addOverlay('layer.stations', stations.layer);
  const legend = addLegend(base.map, () => current()?.config.low_soc_pct ?? DEFAULT_CONFIG.low_soc_pct);
  base.onCrsChange(() => current()?.reproject());
  return Object.assign(ui, {
    base,
    cars,
    stations,
    legend,
    vehicleList: new VehicleList({
      list: byId('vehicle-list'), search: byId('vehicle-search'), count: byId('vehicle-count'), onPick: pick,
    }),
    alarmList: new AlarmList({ list: byId('alarm-list'), badge: byId('alarm-badge'), onPick: pick }),
    alarmCentre: new AlarmCentre({
      list: byId('alarm-centre'),
      badge: byId('alarm-unread'),
      plateOf: (vin) => current()?.registry.get(vin)?.plate ?? vin,
      onPick: pick,
    }),
    orderList: new OrderList({
      list: byId('order-list'),
      chips: byId('order-filters'),
      badge: byId('order-badge'),
      unitName: (id) => current()?.unitName(id) ?? id,
      plateOf: (vin) => current()?.plateOf(vin) ?? vin,
      driverName: (id) => current()?.drivers.get(id)?.name ?? id,
      onOpen: (id) => current()?.openOrder(id),
    }),
    orderDetail: new OrderDetail({
      map: base.map,
      user: () => current()?.user ?? {},
      cars: () => [...(current()?.state.values() ?? [])],
      unitName: (id) => current()?.unitName(id) ?? id,
      plateOf: (vin) => current()?.plateOf(vin) ?? vin,
      driver: (id) => current()?.drivers.get(id) ?? null,
      vehicle: (vin) => current()?.registry.get(vin) ?? null,
      lowSoc: () => current()?.config.low_soc_pct ?? DEFAULT_CONFIG.low_soc_pct,
      onChanged: (order) => current()?.orderList.upsert(order),
      onSelect: (id) => current()?.orderList.select(id),
      cover: () => coverOf(byId('order-detail'), base.map),
    }),
    orderForm: null, // loaded at its first use
    detail: new VehicleDetail({
      map: base.map,
      liveCar: (vin) => current()?.state.get(vin),
      unitName: (id) => current()?.unitName(id) ?? id,
      onClose: () => current()?.select(null),
    }),
    tabs: setupTabs(),
    unitFilter: setupUnitFilter(current),
    newOrder: setupNewOrder(ui, current),
  });
}

/** The new-order card: its module is fetched at the first click (most sessions never book). */
function setupNewOrder(ui, current) {
  const button = byId('order-new');
  button.addEventListener('click', async () => {
    if (!ui.orderForm) {
      const { OrderForm } = await import('./order-form.js');
      ui.orderForm ??= new OrderForm({
        map: ui.base.map,
        user: () => current()?.user ?? {},
        units: () => current()?.bookableUnits() ?? [],
        onCreated: (order) => current()?.orderCreated(order),
        onOpen: () => current()?.clearCards(),
      });
    }
    if (current()) ui.orderForm.open();
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

function setupUnitFilter(current) {
  const select = byId('unit-filter');
  select.addEventListener('change', () => current()?.setUnitFilter(select.value));
  return select;
}
