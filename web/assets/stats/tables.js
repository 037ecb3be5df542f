// The units, vehicles and drivers tables: sortable by clicking a column header (again to
// reverse), with `aria-sort` on the sorted column. Each row carries `data-id`.

import { h, replaceChildren } from '../lib/dom.js';
import { t, lang, formatNumber } from '../lib/i18n.js';
import { orderTotal, sortRows } from './data.js';

const LOCALE = { zh: 'zh-CN', en: 'en' };

/**
 * A table over `columns`: `{key, label (message key), value(row) (sort value), cell(row)
 * (text or node; default: value), num (right-aligned number), title (message key)}`.
 */
export class SortableTable {
  constructor(table, { columns, id, sort, emptyKey }) {
    this.table = table;
    this.columns = columns;
    this.id = id;
    this.sort = { ...sort };
    this.emptyKey = emptyKey;
    this.rows = [];
    table.addEventListener('click', (ev) => {
      const th = ev.target.closest('th[data-key]');
      if (!th) return;
      const key = th.dataset.key;
      const col = this.columns.find((c) => c.key === key);
      if (this.sort.key === key) this.sort.dir = this.sort.dir === 'asc' ? 'desc' : 'asc';
      else this.sort = { key, dir: col?.num ? 'desc' : 'asc' };
      this.render();
    });
  }

  /** Shows `rows` in the current sort order. */
  setRows(rows) {
    this.rows = rows ?? [];
    this.render();
  }

  render() {
    const col = this.columns.find((c) => c.key === this.sort.key) ?? this.columns[0];
    const rows = sortRows(this.rows, col.value, this.sort.dir, LOCALE[lang()]);
    const head = h('tr', null, this.columns.map((c) => {
      const sorted = c.key === col.key;
      return h('th', {
        scope: 'col',
        class: c.num ? 'num' : null,
        'data-key': c.key,
        'aria-sort': sorted ? (this.sort.dir === 'asc' ? 'ascending' : 'descending') : 'none',
        title: c.title ? t(c.title) : null,
      }, h('button', { type: 'button', class: 'st-sort' }, t(c.label), h('span', { class: 'st-arrow', 'aria-hidden': 'true' }, sorted ? (this.sort.dir === 'asc' ? '▲' : '▼') : '')));
    }));
    const body = rows.length
      ? rows.map((r) => h('tr', { 'data-id': this.id(r) }, this.columns.map((c) => {
        const v = c.cell ? c.cell(r) : c.value(r);
        return h('td', { class: c.num ? 'num' : null, 'data-key': c.key }, v);
      })))
      : [h('tr', { class: 'st-empty-row' }, h('td', { colspan: String(this.columns.length) }, t(this.emptyKey)))];
    replaceChildren(this.table, h('thead', null, head), h('tbody', null, body));
  }
}

const num = (digits) => (v) => formatNumber(v, digits);

/** A month-over-month cell: ▲/▼ and the percent, or a dash when last month had nothing. */
export function changeCell(pct) {
  if (pct == null || !Number.isFinite(pct)) return h('span', { class: 'st-chg none', title: t('stats.change.none') }, t('none'));
  const dir = pct > 0.05 ? 'up' : pct < -0.05 ? 'down' : 'flat';
  const arrow = dir === 'up' ? '▲' : dir === 'down' ? '▼' : '';
  return h('span', { class: `st-chg ${dir}` }, `${arrow}${formatNumber(Math.abs(pct), 1)}%`);
}

function budgetCell(u) {
  const pct = u.budget_share * 100;
  const state = u.budget_share >= 1 ? 'spent' : u.budget_warning ? 'warning' : 'ok';
  return h('span', { class: `st-budget ${state}`, 'data-state': state },
    `${formatNumber(pct, 1)}%`,
    state === 'ok' ? null : h('span', { class: `st-tag ${state}` }, t(`stats.budget.${state}`)));
}

/** The units table. */
export function unitsTable(el) {
  return new SortableTable(el, {
    id: (u) => u.unit_id,
    sort: { key: 'km', dir: 'desc' },
    emptyKey: 'stats.table.empty',
    columns: [
      { key: 'name', label: 'stats.col.unit', value: (u) => u.name || u.unit_id },
      { key: 'orders', label: 'stats.col.orders', title: 'stats.col.orders.title', num: true, value: orderTotal, cell: (u) => formatNumber(orderTotal(u)) },
      { key: 'completed', label: 'stats.col.completed', num: true, value: (u) => Number(u.orders?.completed ?? 0), cell: (u) => formatNumber(u.orders?.completed ?? 0) },
      { key: 'passengers', label: 'stats.col.passengers', num: true, value: (u) => u.passengers, cell: (u) => formatNumber(u.passengers) },
      { key: 'trips', label: 'stats.col.trips', num: true, value: (u) => u.trips, cell: (u) => formatNumber(u.trips) },
      { key: 'km', label: 'stats.col.km', num: true, value: (u) => u.km, cell: (u) => num(2)(u.km) },
      { key: 'hours', label: 'stats.col.hours', num: true, value: (u) => u.hours, cell: (u) => num(1)(u.hours) },
      { key: 'kwh', label: 'stats.col.kwh', num: true, value: (u) => u.kwh, cell: (u) => num(2)(u.kwh) },
      { key: 'co2', label: 'stats.col.co2', title: 'stats.col.co2.title', num: true, value: (u) => u.co2_avoided_kg, cell: (u) => num(1)(u.co2_avoided_kg) },
      { key: 'budget', label: 'stats.col.budget', num: true, value: (u) => u.budget_kwh, cell: (u) => num(1)(u.budget_kwh) },
      { key: 'share', label: 'stats.col.share', num: true, value: (u) => u.budget_share, cell: budgetCell },
      { key: 'chargingCost', label: 'stats.col.charging_cost', title: 'stats.col.charging_cost.title', num: true, value: (u) => u.charging_cost_yuan, cell: (u) => num(2)(u.charging_cost_yuan) },
      { key: 'otherCosts', label: 'stats.col.other_costs', title: 'stats.col.other_costs.title', num: true, value: (u) => u.other_costs_yuan, cell: (u) => num(2)(u.other_costs_yuan) },
      { key: 'change', label: 'stats.col.change', title: 'stats.col.change.title', num: true, value: (u) => u.km_change_pct, cell: (u) => changeCell(u.km_change_pct) },
    ],
  });
}

/** The vehicles table; `unitName(id)` names a car's unit. */
export function vehiclesTable(el, unitName) {
  return new SortableTable(el, {
    id: (v) => v.vin,
    sort: { key: 'km', dir: 'desc' },
    emptyKey: 'stats.table.empty',
    columns: [
      { key: 'plate', label: 'stats.col.plate', value: (v) => v.plate, cell: (v) => h('span', { title: v.vin }, v.plate) },
      { key: 'unit', label: 'stats.col.unit', value: (v) => unitName(v.unit_id) },
      { key: 'trips', label: 'stats.col.trips', num: true, value: (v) => v.trips, cell: (v) => formatNumber(v.trips) },
      { key: 'km', label: 'stats.col.km', num: true, value: (v) => v.km, cell: (v) => num(2)(v.km) },
      { key: 'hours', label: 'stats.col.hours', num: true, value: (v) => v.hours, cell: (v) => num(1)(v.hours) },
      { key: 'utilization', label: 'stats.col.utilization', title: 'stats.col.utilization.title', num: true, value: (v) => v.utilization, cell: (v) => `${formatNumber(v.utilization * 100, 1)}%` },
      { key: 'kwh', label: 'stats.col.kwh', num: true, value: (v) => v.kwh, cell: (v) => num(2)(v.kwh) },
      { key: 'charging', label: 'stats.col.charging', num: true, value: (v) => v.charging_sessions, cell: (v) => formatNumber(v.charging_sessions) },
      { key: 'charged', label: 'stats.col.charged', num: true, value: (v) => v.charging_kwh, cell: (v) => num(1)(v.charging_kwh) },
      { key: 'chargingCost', label: 'stats.col.charging_cost', title: 'stats.col.charging_cost.title', num: true, value: (v) => v.charging_cost_yuan, cell: (v) => num(2)(v.charging_cost_yuan) },
      { key: 'otherCosts', label: 'stats.col.other_costs', title: 'stats.col.other_costs.title', num: true, value: (v) => v.other_costs_yuan, cell: (v) => num(2)(v.other_costs_yuan) },
      { key: 'idle', label: 'stats.col.idle', title: 'stats.col.idle.title', num: true, value: (v) => v.idle_days, cell: (v) => formatNumber(v.idle_days) },
      { key: 'change', label: 'stats.col.change', title: 'stats.col.change.title', num: true, value: (v) => v.km_change_pct, cell: (v) => changeCell(v.km_change_pct) },
    ],
  });
}

/** The drivers table. */
export function driversTable(el) {
  return new SortableTable(el, {
    id: (d) => d.driver_id,
    sort: { key: 'km', dir: 'desc' },
    emptyKey: 'stats.table.empty',
    columns: [
      { key: 'name', label: 'stats.col.driver', value: (d) => d.name || d.driver_id },
      { key: 'id', label: 'stats.col.driver_id', value: (d) => d.driver_id },
      { key: 'trips', label: 'stats.col.trips', num: true, value: (d) => d.trips, cell: (d) => formatNumber(d.trips) },
      { key: 'km', label: 'stats.col.km', num: true, value: (d) => d.km, cell: (d) => num(2)(d.km) },
      { key: 'hours', label: 'stats.col.hours', num: true, value: (d) => d.hours, cell: (d) => num(1)(d.hours) },
      { key: 'change', label: 'stats.col.change', title: 'stats.col.change.title', num: true, value: (d) => d.km_change_pct, cell: (d) => changeCell(d.km_change_pct) },
    ],
  });
}
