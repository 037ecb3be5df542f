// The side panel's vehicle and alarm lists (the order list is in orders.js). Each list
// renders from the page's current data and re-renders its text on a language switch.

import { h, replaceChildren } from '../lib/dom.js';
import { t, formatTime, formatUnit } from '../lib/i18n.js';
import { statusColor, isLowSoc } from './cars.js';
import { hasPosition } from '../lib/coords.js';

/** Plates are compared without separators and case: 浙L·D12345 = 浙LD12345 = 浙ld12345. */
export function normalizePlate(s) {
  return String(s ?? '').replace(/[\s·•・.\-_]/g, '').toUpperCase();
}

export function comparePlates(a, b) {
  return String(a.plate ?? a.vin).localeCompare(String(b.plate ?? b.vin), 'zh-CN');
}

export function statusChip(status) {
  return h('span', { class: 'status-chip', dataset: { status: status ?? 'unknown' }, style: `--c:${statusColor(status)}` },
    t(`status.${status}`) === `status.${status}` ? t('status.unknown') : t(`status.${status}`));
}

export function socView(soc, low) {
  if (!Number.isFinite(soc)) return h('span', { class: 'soc none' }, t('none'));
  const pct = Math.max(0, Math.min(100, soc));
  return h('span', { class: `soc${low ? ' low' : ''}` },
    h('span', { class: 'soc-bar', 'aria-hidden': 'true' }, h('i', { style: `width:${pct.toFixed(0)}%` })),
    formatUnit('unit.pct', soc));
}

/** The vehicle list (#vehicle-list) with its search box (#vehicle-search). */
export class VehicleList {
  constructor({ list, search, count, onPick }) {
    this.list = list;
    this.search = search;
    this.count = count;
    this.onPick = onPick;
    this.rows = new Map(); // vin → li
    this.cars = new Map();
    this.lowSoc = 20;
    this.selected = null;
    this.query = '';
    search.addEventListener('input', () => {
      this.query = normalizePlate(search.value);
      this.applyFilter();
    });
    list.addEventListener('click', (ev) => {
      const row = ev.target.closest('li[data-vin]');
      if (row) this.onPick(row.dataset.vin);
    });
    list.addEventListener('keydown', (ev) => {
      if (ev.key !== 'Enter' && ev.key !== ' ') return;
      const row = ev.target.closest('li[data-vin]');
      if (!row) return;
      ev.preventDefault();
      this.onPick(row.dataset.vin);
    });
  }

  setLowSoc(pct) {
    this.lowSoc = pct;
  }

  /** Every car anew (a snapshot, or a language switch). */
  replaceAll(cars) {
    this.cars = new Map(cars.map((c) => [c.vin, c]));
    this.rows.clear();
    const sorted = [...this.cars.values()].sort(comparePlates);
    replaceChildren(this.list, sorted.map((car) => {
      const row = this.makeRow(car);
      this.rows.set(car.vin, row);
      return row;
    }));
    this.applyFilter();
  }

  /** One car changed: its row is refilled in place (or inserted in plate order). */
  update(car) {
    this.cars.set(car.vin, car);
    const old = this.rows.get(car.vin);
    if (old) {
      // Refilled, not replaced: a row with keyboard focus keeps it.
      this.fill(old, car);
      old.hidden = !this.matches(car);
      return;
    }
    const row = this.makeRow(car);
    row.hidden = !this.matches(car);
    const next = [...this.rows.values()].find((r) => comparePlates(this.cars.get(r.dataset.vin), car) > 0);
    this.rows.set(car.vin, row);
    if (next && next.parentNode === this.list) this.list.insertBefore(row, next);
    else this.list.append(row);
    this.updateCount();
  }

  select(vin) {
    this.selected = vin;
    for (const [v, row] of this.rows) row.classList.toggle('selected', v === vin);
  }

  makeRow(car) {
    const row = h('li', { tabindex: '0', role: 'button' });
    this.fill(row, car);
    return row;
  }

  fill(row, car) {
    row.className = `vrow${car.vin === this.selected ? ' selected' : ''}`;
    row.dataset.vin = car.vin;
    row.dataset.status = car.status ?? 'unknown';
    const meta = hasPosition(car) ? formatUnit('unit.kmh', car.speed_kmh) : t('vehicles.nofix');
    replaceChildren(row,
      h('span', { class: 'dot', style: `background:${statusColor(car.status)}` }),
      h('span', { class: 'plate' }, car.plate ?? car.vin),
      statusChip(car.status),
      socView(car.soc_pct, isLowSoc(car, this.lowSoc)),
      h('span', { class: 'speed' }, meta));
  }

  matches(car) {
    return !this.query || normalizePlate(car.plate).includes(this.query);
  }

  applyFilter() {
    for (const [vin, row] of this.rows) row.hidden = !this.matches(this.cars.get(vin));
    this.updateCount();
  }

  updateCount() {
    const n = this.cars.size;
    let shown = 0;
    for (const row of this.rows.values()) if (!row.hidden) shown += 1;
    let empty = this.list.parentNode.querySelector('.list-empty');
    if (!empty) {
      empty = h('p', { class: 'list-empty' });
      this.list.after(empty);
    }
    empty.hidden = shown > 0;
    empty.textContent = n === 0 ? t('vehicles.empty') : t('vehicles.nomatch');
    this.count.textContent = this.query ? t('vehicles.count_filtered', { shown, n }) : t('vehicles.count', { n });
  }
}

const ALARM_ORDER = { speeding: 0, low_soc: 1, offline: 2 };

/** The alarms the page raises from cars' live states. */
export function computeAlarms(cars, { lowSoc, speedLimit }) {
  const alarms = [];
  for (const car of cars) {
    if (Number.isFinite(car.speed_kmh) && car.speed_kmh > speedLimit && car.status !== 'offline') {
      alarms.push({ kind: 'speeding', car });
    }
    if (isLowSoc(car, lowSoc)) alarms.push({ kind: 'low_soc', car });
    if (car.status === 'offline') alarms.push({ kind: 'offline', car });
  }
  alarms.sort((a, b) => ALARM_ORDER[a.kind] - ALARM_ORDER[b.kind] || comparePlates(a.car, b.car));
  return alarms;
}

/** The alarm list (#alarm-list) and the tab's count badge. */
export class AlarmList {
  constructor({ list, badge, onPick }) {
    this.list = list;
    this.badge = badge;
    this.onPick = onPick;
    this.signature = null;
    this.alarms = [];
    this.limits = { lowSoc: 20, speedLimit: 80 };
    list.addEventListener('click', (ev) => {
      const row = ev.target.closest('li[data-vin]');
      if (row) this.onPick(row.dataset.vin);
    });
    list.addEventListener('keydown', (ev) => {
      const row = ev.target.closest('li[data-vin]');
      if (row && (ev.key === 'Enter' || ev.key === ' ')) {
        ev.preventDefault();
        this.onPick(row.dataset.vin);
      }
    });
  }

  /** Recomputes from every car; re-renders only when what is shown changed. Returns the VINs in alarm. */
  update(cars, limits, force = false) {
    this.limits = limits;
    const alarms = computeAlarms(cars, limits);
    const signature = alarms.map((a) => `${a.kind}:${a.car.vin}:${this.detail(a)}`).join('|');
    if (force || signature !== this.signature) {
      this.signature = signature;
      this.alarms = alarms;
      this.render();
    }
    return new Set(alarms.map((a) => a.car.vin));
  }

  detail({ kind, car }) {
    const { lowSoc, speedLimit } = this.limits;
    if (kind === 'speeding') {
      return t('alarm.speeding.detail', { speed: formatUnit('unit.kmh', car.speed_kmh, 1), limit: formatUnit('unit.kmh', speedLimit) });
    }
    if (kind === 'low_soc') {
      return t('alarm.low_soc.detail', { soc: formatUnit('unit.pct', car.soc_pct, 1), limit: formatUnit('unit.pct', lowSoc) });
    }
    return car.ts ? t('alarm.offline.detail', { time: formatTime(car.ts) }) : t('alarm.offline.never');
  }

  render() {
    replaceChildren(this.list, this.alarms.map((a) => h('li', {
      class: 'arow', dataset: { vin: a.car.vin, kind: a.kind }, tabindex: '0', role: 'button',
    },
    h('span', { class: 'alarm-kind', dataset: { kind: a.kind } }, t(`alarm.${a.kind}`)),
    h('span', { class: 'plate' }, a.car.plate ?? a.car.vin),
    h('span', { class: 'alarm-detail' }, this.detail(a)))));
    let empty = this.list.parentNode.querySelector('.list-empty');
    if (!empty) {
      empty = h('p', { class: 'list-empty' });
      this.list.after(empty);
    }
    empty.hidden = this.alarms.length > 0;
    empty.textContent = t('alarms.empty');
    this.badge.textContent = String(this.alarms.length);
    this.badge.hidden = this.alarms.length === 0;
  }
}
