// The page's three charts (vendored ECharts, canvas renderer): km and kWh per unit, the share
// of each unit's energy budget used against the 80 % warning and 100 % lines, and the top
// cars by km with their utilization. Names from the server reach tooltips escaped.

/* global echarts */

import { escapeHtml } from '../lib/dom.js';
import { t, formatNumber } from '../lib/i18n.js';

/** Cars in the per-vehicle chart. */
export const TOP_VEHICLES = 10;
/** The budget share (percent) from which a unit is warned (see docs/api.md). */
export const WARNING_PCT = 80;
/** Past this many categories a chart gets a zoom slider instead of squeezing every bar. */
const MAX_CATEGORIES = 12;
/** A chart whose animation never reports finished still counts as drawn after this long. */
const SETTLE_TIMEOUT_MS = 2000;

const FONT = '"Microsoft YaHei", "PingFang SC", "WenQuanYi Micro Hei", "Noto Sans CJK SC", sans-serif';
const COLOR = {
  km: '#1c6dd0',
  kwh: '#2f9e44',
  util: '#e8a317',
  ok: '#3b8fd9',
  warning: '#e8a317',
  spent: '#c92a2a',
  text: '#1f2933',
  muted: '#5f6b7a',
  line: '#dde3ea',
};

const BASE = {
  animationDuration: 400,
  animationDurationUpdate: 300,
  textStyle: { fontFamily: FONT, color: COLOR.text },
};

/** One chart element, its empty-state note (the `.st-empty` beside it) and resizing. */
export class Chart {
  constructor(el) {
    this.el = el;
    this.note = el.parentElement.querySelector('.st-empty');
    this.chart = null;
    new ResizeObserver(() => this.chart?.resize()).observe(el);
  }

  /** Blank: nothing drawn, no note. */
  clear() {
    this.chart?.clear();
    this.note.hidden = true;
  }

  /**
   * Draws `option`, or the note `emptyText` instead when given (`animate` false: at once).
   * Resolves once the chart has finished drawing (animations included).
   */
  show(option, emptyText, animate = true) {
    if (!this.chart) this.chart = echarts.init(this.el, null, { renderer: 'canvas' });
    this.note.hidden = !emptyText;
    this.note.textContent = emptyText ?? '';
    this.el.classList.toggle('is-empty', !!emptyText);
    const chart = this.chart;
    const settled = new Promise((resolve) => {
      const done = () => {
        chart.off('finished', done);
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(done, SETTLE_TIMEOUT_MS);
      chart.on('finished', done);
    });
    chart.setOption({ ...BASE, ...(emptyText ? { series: [] } : option), animation: animate }, { notMerge: true });
    return settled;
  }
}

const num = (v, d = 1) => formatNumber(v, d);
const round = (v, d = 2) => Math.round(v * 10 ** d) / 10 ** d;

function axisTooltip(title, lines) {
  return `<b>${escapeHtml(title)}</b><br>${lines.join('<br>')}`;
}

function zoom(count) {
  return count > MAX_CATEGORIES
    ? [{ type: 'slider', height: 14, bottom: 4, startValue: 0, endValue: MAX_CATEGORIES - 1, brushSelect: false }]
    : [];
}

function categoryAxis(names) {
  return {
    type: 'category',
    data: names,
    axisTick: { alignWithLabel: true },
    axisLabel: { interval: 0, rotate: names.length > 5 ? 30 : 0, width: 96, overflow: 'truncate', color: COLOR.muted },
  };
}

function valueAxis(name, extra) {
  return {
    type: 'value',
    name,
    nameTextStyle: { color: COLOR.muted },
    axisLabel: { color: COLOR.muted },
    splitLine: { lineStyle: { color: COLOR.line } },
    ...extra,
  };
}

/** km and kWh per unit, most km first. Answers `[option, emptyText]`. */
export function unitsChart(units) {
  const rows = [...units].sort((a, b) => b.km - a.km || b.kwh - a.kwh);
  if (!rows.length) return [null, t('stats.chart.empty')];
  if (rows.every((u) => !u.km && !u.kwh)) return [null, t('stats.chart.no_unit_trips')];
  const names = rows.map((u) => u.name || u.unit_id);
  const km = t('stats.series.km');
  const kwh = t('stats.series.kwh');
  return [{
    color: [COLOR.km, COLOR.kwh],
    legend: { top: 0, data: [km, kwh], textStyle: { color: COLOR.muted } },
    grid: { left: 8, right: 8, top: 40, bottom: rows.length > MAX_CATEGORIES ? 26 : 8, containLabel: true },
    tooltip: {
      trigger: 'axis',
      axisPointer: { type: 'shadow' },
      formatter: (ps) => axisTooltip(names[ps[0].dataIndex], ps.map((p) => `${p.marker}${escapeHtml(p.seriesName)}${t('colon')}${num(p.value, 2)}`)),
    },
    xAxis: categoryAxis(names),
    yAxis: [valueAxis('km'), valueAxis('kWh', { splitLine: { show: false } })],
    dataZoom: zoom(rows.length),
    series: [
      { name: km, type: 'bar', barMaxWidth: 26, data: rows.map((u) => round(u.km)) },
      { name: kwh, type: 'bar', barMaxWidth: 26, yAxisIndex: 1, data: rows.map((u) => round(u.kwh)) },
    ],
  }, null];
}

/** The state of a unit's budget: `ok`, `warning` (from 80 %) or `spent` (from 100 %). */
export function budgetState(u) {
  return u.budget_share >= 1 ? 'spent' : u.budget_warning ? 'warning' : 'ok';
}

/** Share of each unit's monthly energy budget used, as bars against the 80 % and 100 % lines. */
export function budgetChart(units) {
  const rows = [...units].sort((a, b) => b.budget_share - a.budget_share);
  if (!rows.length) return [null, t('stats.chart.empty')];
  const names = rows.map((u) => u.name || u.unit_id);
  const top = Math.max(100, ...rows.map((u) => u.budget_share * 100));
  const max = Math.ceil((top + 10) / 20) * 20;
  return [{
    grid: { left: 8, right: 24, top: 28, bottom: 8, containLabel: true },
    tooltip: {
      trigger: 'axis',
      axisPointer: { type: 'shadow' },
      formatter: (ps) => {
        const u = rows[ps[0].dataIndex];
        return axisTooltip(names[ps[0].dataIndex], [
          `${t('stats.budget.used')}${t('colon')}${num(u.kwh, 2)} / ${num(u.budget_kwh, 1)} kWh`,
          `${t('stats.budget.share')}${t('colon')}${num(u.budget_share * 100, 1)}%`,
          budgetState(u) === 'ok' ? null : `<span class="st-tip-${budgetState(u)}">${escapeHtml(t(`stats.budget.${budgetState(u)}`))}</span>`,
        ].filter(Boolean));
      },
    },
    xAxis: valueAxis(null, { max, axisLabel: { color: COLOR.muted, formatter: '{value}%' } }),
    yAxis: {
      type: 'category',
      inverse: true,
      data: names,
      axisTick: { show: false },
      axisLabel: { width: 110, overflow: 'truncate', color: COLOR.text },
    },
    dataZoom: rows.length > MAX_CATEGORIES
      ? [{ type: 'slider', yAxisIndex: 0, width: 12, right: 4, startValue: 0, endValue: MAX_CATEGORIES - 1, brushSelect: false }]
      : [],
    series: [{
      type: 'bar',
      barMaxWidth: 20,
      showBackground: true,
      backgroundStyle: { color: '#eef2f6' },
      data: rows.map((u) => ({ value: round(u.budget_share * 100, 1), itemStyle: { color: COLOR[budgetState(u)], borderRadius: [0, 3, 3, 0] } })),
      label: { show: true, position: 'right', color: COLOR.text, formatter: (p) => `${num(p.value, 1)}%` },
      // The category axis runs top-down (inverse), so a line's start is its top end.
      markLine: {
        silent: true,
        symbol: 'none',
        data: [
          { xAxis: WARNING_PCT, lineStyle: { color: COLOR.warning, type: 'dashed', width: 1.5 }, label: { formatter: t('stats.budget.line_warning'), color: '#9a6a00', position: 'start' } },
          { xAxis: 100, lineStyle: { color: COLOR.spent, type: 'solid', width: 1.5 }, label: { formatter: t('stats.budget.line_spent'), color: COLOR.spent, position: 'start' } },
        ],
      },
    }],
  }, null];
}

/** The cars with most km (at most TOP_VEHICLES), with utilization on a second axis. */
export function vehiclesChart(vehicles) {
  const rows = vehicles.filter((v) => v.km > 0 || v.hours > 0).sort((a, b) => b.km - a.km).slice(0, TOP_VEHICLES);
  if (!rows.length) return [null, t(vehicles.length ? 'stats.chart.no_trips' : 'stats.chart.empty')];
  const plates = rows.map((v) => v.plate || v.vin);
  const km = t('stats.series.km');
  const util = t('stats.series.utilization');
  return [{
    color: [COLOR.km, COLOR.util],
    legend: { top: 0, data: [km, util], textStyle: { color: COLOR.muted } },
    grid: { left: 8, right: 8, top: 40, bottom: 8, containLabel: true },
    tooltip: {
      trigger: 'axis',
      axisPointer: { type: 'shadow' },
      formatter: (ps) => {
        const v = rows[ps[0].dataIndex];
        return axisTooltip(plates[ps[0].dataIndex], [
          `${t('stats.series.km')}${t('colon')}${num(v.km, 2)} km`,
          `${t('stats.series.utilization')}${t('colon')}${num(v.utilization * 100, 1)}%`,
          `${t('stats.col.trips')}${t('colon')}${num(v.trips, 0)}`,
        ]);
      },
    },
    xAxis: categoryAxis(plates),
    yAxis: [valueAxis('km'), valueAxis('%', { splitLine: { show: false }, min: 0 })],
    series: [
      { name: km, type: 'bar', barMaxWidth: 26, data: rows.map((v) => round(v.km)) },
      { name: util, type: 'scatter', yAxisIndex: 1, symbol: 'diamond', symbolSize: 11, data: rows.map((v) => round(v.utilization * 100, 2)) },
    ],
  }, null];
}
