// The monthly statistics page (`/stats`, issue 7): signs in, then shows one Asia/Shanghai
// month of the fleet's use for what the user may see — summary cards with the change against
// the month before, charts per unit and per car, each unit's energy budget, the misuse
// alarms with their tracks, sortable tables and the CSV/XLSX downloads of the same figures.
// Everything comes from the public API (stats/monthly, alarms/misuse, units, vehicle tracks).

import { api, ApiError } from '../lib/api.js';
import { byId, h, replaceChildren } from '../lib/dom.js';
import { t, lang, formatNumber, formatTime } from '../lib/i18n.js';
import { getUser } from '../lib/session.js';
import { bootPage } from '../lib/shell.js';
import { isMonth, thisMonth, addMonths, summarize } from './data.js';
import { Chart, unitsChart, budgetChart, budgetState, vehiclesChart, TOP_VEHICLES } from './charts.js';
import { unitsTable, vehiclesTable, driversTable, changeCell } from './tables.js';
import { AlarmPanel } from './alarms.js';
import { download } from './download.js';

/** Roles that see every unit, and so may narrow the page to one. */
const ALL_UNIT_ROLES = new Set(['admin', 'dispatcher', 'auditor']);
/** The earliest month the picker offers. */
const FIRST_MONTH = '2020-01';
const VIEWS = ['units', 'vehicles', 'drivers'];
const MONTH_LOCALE = { zh: 'zh-CN', en: 'en-GB' };

const hooks = {
  /** True once the month's figures, charts, tables and alarms are drawn. */
  ready: false,
  /** The month and unit filter shown (or being loaded). */
  month: null,
  unit: null,
  /** `{name, size, type}` of the last file saved by a download button. */
  lastDownload: null,
  /** Content-Security-Policy violations seen since the page loaded (`directive blocked-uri`). */
  cspViolations: [],
};
window.__stats = hooks;
document.addEventListener('securitypolicyviolation', (e) => hooks.cspViolations.push(`${e.effectiveDirective} ${e.blockedURI}`));

let ui = null; // the page's widgets, made once and kept across sign-ins
let page = null; // the signed-in session; null while the login view shows

function showDenied(role) {
  byId('stats-view').hidden = true;
  byId('denied-view').hidden = false;
  byId('denied-text').textContent = t(role === 'driver' ? 'stats.denied.driver' : 'stats.denied.other');
  byId('denied-link').hidden = role !== 'driver';
}

function start(user) {
  byId('nav-live').hidden = user.role === 'driver';
  if (user.role === 'driver') {
    showDenied('driver');
    return;
  }
  byId('denied-view').hidden = true;
  byId('stats-view').hidden = false;
  if (!ui) ui = buildUi();
  page = new Page(ui, user);
  page.start();
}

function stop() {
  page = null;
  hooks.ready = false;
  if (ui) clearUi();
  for (const id of ['stats-view', 'denied-view']) byId(id).hidden = true;
}

function relabel() {
  if (!byId('denied-view').hidden) showDenied(getUser()?.role);
  page?.relabel();
}

/** Forgets what the last user was shown, so the next one never glimpses it while loading. */
function clearUi() {
  for (const table of Object.values(ui.tables)) table.setRows([]);
  for (const chart of Object.values(ui.charts)) chart.clear();
  ui.alarms.set([]);
  ui.alarms.clearTrack();
  replaceChildren(ui.summary);
  ui.scope.textContent = '';
  ui.status.textContent = '';
  ui.error.hidden = true;
  document.body.classList.remove('is-loading');
}

/** The widgets; their handlers act on whichever session is current. */
function buildUi() {
  const monthInput = byId('month');
  monthInput.min = FIRST_MONTH;
  monthInput.addEventListener('change', () => page?.pickMonth(monthInput.value));
  byId('month-prev').addEventListener('click', () => page?.pickMonth(addMonths(page.month, -1)));
  byId('month-next').addEventListener('click', () => page?.pickMonth(addMonths(page.month, 1)));
  byId('month-now').addEventListener('click', () => page?.pickMonth(thisMonth()));
  byId('unit-filter').addEventListener('change', (ev) => page?.pickUnit(ev.target.value));
  byId('refresh').addEventListener('click', () => page?.load());
  byId('download-csv').addEventListener('click', () => page?.download('csv'));
  byId('download-xlsx').addEventListener('click', () => page?.download('xlsx'));
  const tabs = byId('tab-units').parentElement;
  tabs.addEventListener('click', (ev) => {
    const tab = ev.target.closest('[role="tab"]');
    if (tab) selectView(tab.dataset.view);
  });
  tabs.addEventListener('keydown', (ev) => {
    if (ev.key !== 'ArrowLeft' && ev.key !== 'ArrowRight') return;
    const i = VIEWS.indexOf(ui.view) + (ev.key === 'ArrowRight' ? 1 : -1);
    selectView(VIEWS[(i + VIEWS.length) % VIEWS.length]);
    byId(`tab-${ui.view}`).focus();
  });
  return {
    view: 'units',
    monthInput,
    unitFilter: byId('unit-filter'),
    unitWrap: byId('unit-filter-wrap'),
    status: byId('status'),
    error: byId('stats-error'),
    summary: byId('summary'),
    scope: byId('summary-scope'),
    charts: { units: new Chart(byId('chart-units')), budget: new Chart(byId('chart-budget')), vehicles: new Chart(byId('chart-vehicles')) },
    tables: {
      units: unitsTable(byId('units-table')),
      vehicles: vehiclesTable(byId('vehicles-table'), (id) => page?.unitName(id) ?? id),
      drivers: driversTable(byId('drivers-table')),
    },
    alarms: new AlarmPanel({ list: byId('alarm-list'), count: byId('alarm-count'), mapEl: byId('alarm-map'), hint: byId('alarm-map-hint') }),
  };
}

function selectView(view) {
  if (!VIEWS.includes(view)) return;
  ui.view = view;
  for (const v of VIEWS) {
    const tab = byId(`tab-${v}`);
    tab.setAttribute('aria-selected', String(v === view));
    tab.tabIndex = v === view ? 0 : -1;
    byId(`panel-${v}`).hidden = v !== view;
  }
}

function monthLabel(month) {
  const [y, m] = month.split('-').map(Number);
  return new Intl.DateTimeFormat(MONTH_LOCALE[lang()], { year: 'numeric', month: 'long', timeZone: 'UTC' }).format(new Date(Date.UTC(y, m - 1, 15)));
}

const CARDS = [
  { kind: 'trips', digits: 0, unit: null },
  { kind: 'km', digits: 1, unit: 'km' },
  { kind: 'kwh', digits: 1, unit: 'kWh' },
  { kind: 'co2', digits: 1, unit: 'kg' },
];

class Page {
  constructor(widgets, user) {
    this.ui = widgets;
    this.user = user;
    this.allUnits = ALL_UNIT_ROLES.has(user.role);
    this.units = []; // from GET /units, for the filter and names
    this.month = thisMonth();
    this.unit = '';
    this.data = null;
    this.alarms = null; // {alarms} or {error}
    this.seq = 0;
    this.loadedAt = null;
  }

  async start() {
    const params = new URLSearchParams(location.search);
    const wanted = params.get('month');
    if (isMonth(wanted) && wanted >= FIRST_MONTH && wanted <= thisMonth()) this.month = wanted;
    this.ui.unitWrap.hidden = !this.allUnits;
    if (this.allUnits) {
      this.unit = params.get('unit') ?? '';
      try {
        this.units = (await api('/units'))?.units ?? [];
      } catch (e) {
        if (e instanceof ApiError && e.status === 401) return;
        this.units = []; // the filter then offers all units only; the figures still load
      }
      if (page !== this) return;
      if (!this.units.some((u) => u.id === this.unit)) this.unit = '';
      this.fillUnitFilter();
    }
    await this.load();
  }

  fillUnitFilter() {
    const sel = this.ui.unitFilter;
    replaceChildren(sel, h('option', { value: '' }, t('unit.all')), this.units.map((u) => h('option', { value: u.id }, u.name || u.id)));
    sel.value = this.unit;
  }

  unitName(id) {
    if (id == null || id === '') return t('unit.none');
    return this.units.find((u) => u.id === id)?.name ?? this.data?.units.find((u) => u.unit_id === id)?.name ?? id;
  }

  pickMonth(month) {
    const now = thisMonth();
    if (!isMonth(month) || month < FIRST_MONTH || month > now) {
      this.ui.monthInput.value = this.month;
      return;
    }
    if (month === this.month && this.data) return;
    this.month = month;
    this.load();
  }

  pickUnit(unit) {
    this.unit = unit;
    this.load();
  }

  syncControls() {
    const now = thisMonth();
    this.ui.monthInput.max = now;
    this.ui.monthInput.value = this.month;
    byId('month-next').disabled = this.month >= now;
    byId('month-prev').disabled = this.month <= FIRST_MONTH;
    if (this.allUnits) this.ui.unitFilter.value = this.unit;
    const url = new URL(location.href);
    url.searchParams.set('month', this.month);
    if (this.unit) url.searchParams.set('unit', this.unit);
    else url.searchParams.delete('unit');
    history.replaceState(null, '', url);
  }

  /** Fetches the month (statistics and alarms together) and draws it. */
  async load() {
    const seq = ++this.seq;
    hooks.ready = false;
    hooks.month = this.month;
    hooks.unit = this.unit || null;
    this.syncControls();
    this.setStatus('loading');
    document.body.classList.add('is-loading');
    const query = { month: this.month, unit_id: this.unit || undefined };
    const alarms = api('/alarms/misuse', { query: { month: this.month } }).then((r) => ({ alarms: r?.alarms ?? [] }), (e) => ({ error: e }));
    let data;
    try {
      data = await api('/stats/monthly', { query });
    } catch (e) {
      if (seq === this.seq && page === this) this.fail(e);
      return;
    }
    const alarmResult = await alarms;
    if (seq !== this.seq || page !== this) return;
    this.data = data;
    this.alarms = alarmResult;
    this.loadedAt = new Date();
    this.ui.error.hidden = true;
    document.body.classList.remove('is-loading');
    await this.render();
    if (seq !== this.seq || page !== this) return;
    hooks.ready = true;
  }

  fail(e) {
    document.body.classList.remove('is-loading');
    if (e instanceof ApiError && e.status === 401) return; // back to the login view
    if (e instanceof ApiError && e.status === 403) {
      showDenied(this.user.role);
      return;
    }
    this.setStatus(null);
    this.showError(e instanceof ApiError && e.status === 0 ? 'stats.error.network' : 'stats.error.load', e);
  }

  showError(key, e) {
    const el = this.ui.error;
    el.hidden = false;
    replaceChildren(el, t(key, { message: e?.message ?? String(e ?? '') }), ' ',
      h('button', { type: 'button', class: 'btn btn-small', onclick: () => this.load() }, t('stats.retry')));
  }

  setStatus(state) {
    this.statusState = state;
    const el = this.ui.status;
    el.dataset.state = state ?? '';
    if (state === 'loading') el.textContent = t('stats.loading');
    else if (state === 'loaded' && this.loadedAt) el.textContent = t('stats.updated', { time: formatTime(this.loadedAt) });
    else el.textContent = '';
  }

  /** Draws the loaded month again in the new language, without the charts' animation. */
  async relabel() {
    if (!this.data) return;
    const seq = this.seq;
    hooks.ready = false;
    await this.render({ animate: false });
    if (seq === this.seq && page === this) hooks.ready = true;
  }

  /** Draws the loaded month; resolves when the charts have finished drawing. */
  async render({ animate = true } = {}) {
    const d = this.data;
    if (!d) return;
    if (this.allUnits) this.fillUnitFilter();
    this.setStatus(this.statusState === 'loading' ? 'loaded' : this.statusState);
    const scope = this.unit || this.user.role === 'unit' ? 'unit' : 'fleet';
    this.renderSummary(d, scope);
    this.ui.tables.units.setRows(d.units);
    this.ui.tables.vehicles.setRows(d.vehicles);
    this.ui.tables.drivers.setRows(d.drivers);
    const f = d.co2_factors;
    byId('co2-note').textContent = f
      ? t('stats.co2.note', { l: formatNumber(f.petrol_l_per_100km, 1), kg: formatNumber(f.petrol_kg_co2_per_l, 2), grid: formatNumber(f.grid_kg_co2_per_kwh, 4) })
      : '';
    byId('chart-vehicles-title').textContent = t('stats.chart.vehicles', { n: TOP_VEHICLES });
    if (this.alarms?.error) this.ui.alarms.set([], 'stats.alarms.error');
    else this.ui.alarms.set((this.alarms?.alarms ?? []).filter((a) => !this.unit || a.unit_id === this.unit));
    const c = this.ui.charts;
    await Promise.all([
      c.units.show(...unitsChart(d.units), animate),
      c.budget.show(...budgetChart(d.units), animate),
      c.vehicles.show(...vehiclesChart(d.vehicles), animate),
    ]);
  }

  renderSummary(d, scope) {
    const sum = summarize(d, scope);
    const unit = scope === 'unit' ? d.units[0] : null;
    this.ui.scope.textContent = scope === 'unit'
      ? t('stats.scope.unit', { month: monthLabel(d.month), name: unit?.name ?? this.unitName(this.unit) })
      : t('stats.scope.fleet', { month: monthLabel(d.month) });
    const cards = CARDS.map(({ kind, digits, unit: u }) => {
      const s = sum[kind];
      const before = u ? `${formatNumber(s.before, digits)} ${u}` : formatNumber(s.before, digits);
      return h('div', { class: 'st-card', 'data-kind': kind },
        h('div', { class: 'st-card-label' }, t(`stats.card.${kind}`)),
        h('div', { class: 'st-card-value' }, h('span', { class: 'v' }, formatNumber(s.now, digits)), u ? h('span', { class: 'u' }, u) : null),
        h('div', { class: 'st-card-foot' },
          h('span', null, t('stats.card.mom')), changeCell(s.change),
          h('span', { class: 'st-card-prev' }, t('stats.card.previous', { v: before }))));
    });
    cards.push(this.budgetCard(d, unit));
    replaceChildren(this.ui.summary, cards);
  }

  /** One unit: its share used; all units: how many are warned or spent. */
  budgetCard(d, unit) {
    if (unit) {
      const state = budgetState(unit);
      return h('div', { class: `st-card st-card-budget ${state}`, 'data-kind': 'budget', 'data-state': state },
        h('div', { class: 'st-card-label' }, t('stats.card.budget')),
        h('div', { class: 'st-card-value' }, h('span', { class: 'v' }, formatNumber(unit.budget_share * 100, 1)), h('span', { class: 'u' }, '%')),
        h('div', { class: 'st-card-foot' },
          h('span', null, t('stats.card.budget.used', { used: formatNumber(unit.kwh, 1), budget: formatNumber(unit.budget_kwh, 1) })),
          state === 'ok' ? null : h('span', { class: `st-tag ${state}` }, t(`stats.budget.${state}`))));
    }
    const warned = d.units.filter((u) => budgetState(u) !== 'ok').length;
    const spent = d.units.filter((u) => budgetState(u) === 'spent').length;
    const state = spent ? 'spent' : warned ? 'warning' : 'ok';
    return h('div', { class: `st-card st-card-budget ${state}`, 'data-kind': 'budget', 'data-state': state },
      h('div', { class: 'st-card-label' }, t('stats.card.budget_units')),
      h('div', { class: 'st-card-value' }, h('span', { class: 'v' }, formatNumber(warned)), h('span', { class: 'u' }, `/ ${formatNumber(d.units.length)}`)),
      h('div', { class: 'st-card-foot' }, h('span', null, t('stats.card.budget_units.foot', { spent: formatNumber(spent) }))));
  }

  async download(format) {
    const btn = byId(format === 'csv' ? 'download-csv' : 'download-xlsx');
    if (btn.disabled) return;
    const params = new URLSearchParams({ month: this.month, format, lang: lang() });
    if (this.unit) params.set('unit_id', this.unit);
    if (format === 'csv') params.set('view', this.ui.view);
    const fallback = format === 'csv' ? `fleet-${this.ui.view}-${this.month}.csv` : `fleet-${this.month}.xlsx`;
    btn.disabled = true;
    try {
      hooks.lastDownload = await download(`/api/v1/stats/monthly?${params}`, fallback);
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 401)) this.showError('stats.error.download', e);
    } finally {
      btn.disabled = false;
    }
  }
}

bootPage({ views: ['user-box'], start, stop, relabel });
