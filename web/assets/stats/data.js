// Pure helpers of the statistics page: months in Asia/Shanghai, the summary totals with their
// month-over-month change, and the sort order of table columns. No DOM here.

import { TIME_ZONE } from '../lib/i18n.js';

const MONTH_RE = /^(\d{4})-(0[1-9]|1[0-2])$/;

/** True for a `YYYY-MM` month the API accepts (years 2000–2100). */
export function isMonth(s) {
  const m = MONTH_RE.exec(String(s ?? ''));
  return !!m && Number(m[1]) >= 2000 && Number(m[1]) <= 2100;
}

/** This month in Asia/Shanghai as `YYYY-MM`, whatever the browser's own zone. */
export function thisMonth(now = new Date()) {
  const parts = new Intl.DateTimeFormat('en-CA', { timeZone: TIME_ZONE, year: 'numeric', month: '2-digit' }).formatToParts(now);
  const part = (type) => parts.find((p) => p.type === type)?.value;
  return `${part('year')}-${part('month')}`;
}

/** `month` moved by `n` months (negative: back). */
export function addMonths(month, n) {
  const [y, m] = month.split('-').map(Number);
  const i = y * 12 + (m - 1) + n;
  return `${String(Math.floor(i / 12)).padStart(4, '0')}-${String((i % 12) + 1).padStart(2, '0')}`;
}

/** Change from `before` to `now` in percent, or null when there was nothing before. */
export function changePct(now, before) {
  return before > 0 ? ((now - before) / before) * 100 : null;
}

/** kg of CO₂ avoided by `km` on `kwh` against petrol, with the API's factors. */
export function co2Avoided(factors, km, kwh) {
  if (!factors) return 0;
  return (km * factors.petrol_l_per_100km) / 100 * factors.petrol_kg_co2_per_l - kwh * factors.grid_kg_co2_per_kwh;
}

/**
 * The summary cards' figures. `scope` is `fleet` (every car in view, order or not: the
 * vehicles rows) or `unit` (the trips that served the unit's orders: the units rows).
 * Answers `{trips, km, kwh, co2, hours}` each as `{now, before, change}`.
 */
export function summarize(data, scope) {
  const rows = scope === 'unit' ? data.units : data.vehicles;
  const sum = (pick) => rows.reduce((acc, r) => acc + (Number(pick(r)) || 0), 0);
  const now = { trips: sum((r) => r.trips), km: sum((r) => r.km), kwh: sum((r) => r.kwh), hours: sum((r) => r.hours) };
  const before = {
    trips: sum((r) => r.previous?.trips),
    km: sum((r) => r.previous?.km),
    kwh: sum((r) => r.previous?.kwh),
    hours: sum((r) => r.previous?.hours),
  };
  now.co2 = scope === 'unit' ? sum((r) => r.co2_avoided_kg) : co2Avoided(data.co2_factors, now.km, now.kwh);
  before.co2 = co2Avoided(data.co2_factors, before.km, before.kwh);
  const out = {};
  for (const k of Object.keys(now)) out[k] = { now: now[k], before: before[k], change: changePct(now[k], before[k]) };
  return out;
}

/** Orders of a unit row, all statuses together. */
export function orderTotal(unit) {
  return Object.values(unit.orders ?? {}).reduce((a, n) => a + (Number(n) || 0), 0);
}

const collators = new Map();

/**
 * Sorts `rows` by `value(row)` (numbers, or strings compared in the page's language, so
 * Chinese names go by pinyin); empty values last whichever the direction.
 */
export function sortRows(rows, value, dir, locale) {
  let collator = collators.get(locale);
  if (!collator) {
    collator = new Intl.Collator(locale, { numeric: true, sensitivity: 'base' });
    collators.set(locale, collator);
  }
  const sign = dir === 'asc' ? 1 : -1;
  return rows
    .map((row, i) => ({ row, i, v: value(row) }))
    .sort((a, b) => {
      const ea = a.v == null || a.v === '' || Number.isNaN(a.v);
      const eb = b.v == null || b.v === '' || Number.isNaN(b.v);
      if (ea || eb) return ea === eb ? a.i - b.i : ea ? 1 : -1;
      const c = typeof a.v === 'number' && typeof b.v === 'number' ? a.v - b.v : collator.compare(String(a.v), String(b.v));
      return c === 0 ? a.i - b.i : sign * c;
    })
    .map((x) => x.row);
}
