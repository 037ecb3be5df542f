// Translation for every page: one dictionary per language (../i18n/<lang>.js), the chosen
// language kept in localStorage so it follows the user across pages and tabs, and locale-aware
// formatting of times and numbers. Chinese is the default.

import zh from '../i18n/zh.js';
import en from '../i18n/en.js';

const STORAGE_KEY = 'fleet.lang';
const DICTIONARIES = { zh, en };
const HTML_LANG = { zh: 'zh-CN', en: 'en' };
const LOCALE = { zh: 'zh-CN', en: 'en-GB' };
// The fleet runs in Zhoushan: times read the same on every dispatcher's screen whatever the
// browser's own zone.
export const TIME_ZONE = 'Asia/Shanghai';

let current = readStored();
const listeners = new Set();

function readStored() {
  try {
    const v = localStorage.getItem(STORAGE_KEY);
    return v in DICTIONARIES ? v : 'zh';
  } catch {
    return 'zh'; // storage blocked: still usable, just not remembered
  }
}

/** The current language code: `zh` or `en`. */
export function lang() {
  return current;
}

/** The string for `key` in the current language, with `{name}` placeholders filled in. */
export function t(key, vars) {
  const text = DICTIONARIES[current][key] ?? DICTIONARIES.zh[key] ?? key;
  if (!vars) return text;
  return text.replace(/\{(\w+)\}/g, (m, name) => (name in vars ? String(vars[name]) : m));
}

/** Switches language, remembers it, relabels the static page and tells every listener. */
export function setLang(code) {
  if (!(code in DICTIONARIES) || code === current) return;
  current = code;
  try {
    localStorage.setItem(STORAGE_KEY, code);
  } catch {
    /* not remembered; the switch still applies to this page */
  }
  applyStatic(document);
  for (const fn of listeners) fn(code);
}

/** The other language, for a two-way switch button. */
export function toggleLang() {
  setLang(current === 'zh' ? 'en' : 'zh');
}

/** Calls `fn(lang)` after every language change; returns a function that stops it. */
export function onLangChange(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

/**
 * Relabels elements marked in the HTML: `data-i18n` (text), `data-i18n-placeholder`,
 * `data-i18n-title`, `data-i18n-aria-label`; sets `<html lang>` and the document title
 * (from `<title data-i18n>`).
 */
export function applyStatic(root) {
  document.documentElement.lang = HTML_LANG[current];
  for (const el of root.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll('[data-i18n-placeholder]')) el.placeholder = t(el.dataset.i18nPlaceholder);
  for (const el of root.querySelectorAll('[data-i18n-title]')) el.title = t(el.dataset.i18nTitle);
  for (const el of root.querySelectorAll('[data-i18n-aria-label]')) {
    el.setAttribute('aria-label', t(el.dataset.i18nAriaLabel));
  }
}

const formatters = new Map();
function formatter(kind, options) {
  const key = `${current}|${kind}`;
  let f = formatters.get(key);
  if (!f) {
    f = new Intl.DateTimeFormat(LOCALE[current], { timeZone: TIME_ZONE, ...options });
    formatters.set(key, f);
  }
  return f;
}

function toDate(value) {
  if (value == null || value === '') return null;
  const d = value instanceof Date ? value : new Date(value);
  return Number.isNaN(d.getTime()) ? null : d;
}

/** Date and time, e.g. 2026/05/01 08:30:12 (Asia/Shanghai). */
export function formatDateTime(value) {
  const d = toDate(value);
  if (!d) return t('none');
  return formatter('dt', {
    year: 'numeric', month: '2-digit', day: '2-digit',
    hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false,
  }).format(d);
}

/** Time of day, with the date when it is not today (Asia/Shanghai). */
export function formatTime(value) {
  const d = toDate(value);
  if (!d) return t('none');
  const day = formatter('day', { year: 'numeric', month: '2-digit', day: '2-digit' });
  const time = formatter('time', { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false }).format(d);
  if (day.format(d) === day.format(new Date())) return time;
  return `${formatter('md', { month: '2-digit', day: '2-digit' }).format(d)} ${time}`;
}

/** A number with at most `digits` decimals, or the "none" dash for null. */
export function formatNumber(value, digits = 0) {
  if (value == null || !Number.isFinite(Number(value))) return t('none');
  return Number(value).toLocaleString(LOCALE[current], { maximumFractionDigits: digits, minimumFractionDigits: 0 });
}

/** A number with a unit key (`unit.km`, `unit.kmh`, `unit.pct`, `unit.deg`). */
export function formatUnit(unitKey, value, digits = 0) {
  if (value == null || !Number.isFinite(Number(value))) return t('none');
  return t(unitKey, { v: formatNumber(value, digits) });
}
