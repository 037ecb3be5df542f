// The Orders tab (#order-list): filter chips, one row per order, and the helpers the order
// details share with it: status and waiting-reason labels, who may do what, error texts.

import { ApiError } from '../lib/api.js';
import { h, replaceChildren } from '../lib/dom.js';
import { t, formatTime } from '../lib/i18n.js';

export const OPEN_STATUSES = ['pending_approval', 'approved', 'assigned', 'accepted', 'picked_up'];
export const FINAL_STATUSES = ['completed', 'rejected', 'canceled'];
const FINAL = new Set(FINAL_STATUSES);

/** The chips, in order: which orders each shows. `done` is decided by OrderList.isToday. */
export const FILTERS = {
  pending: (o) => o.status === 'pending_approval',
  waiting: (o) => o.status === 'approved',
  active: (o) => o.status === 'assigned' || o.status === 'accepted' || o.status === 'picked_up',
  done: (o) => FINAL.has(o.status),
};
const FILTER_KEY = 'fleet.order_filter';
const STAFF = new Set(['admin', 'dispatcher']);

/** `t(key)` when the dictionary has it, else `raw` (codes the pages do not know yet). */
export function tOr(key, raw) {
  const s = t(key);
  return s === key ? String(raw) : s;
}

export const orderStatusText = (s) => tOr(`order.${s}`, s);
export const waitReasonText = (code) => tOr(`wait.${code}`, code);

export function orderStatusBadge(status, attrs = {}) {
  return h('span', { class: 'order-status', dataset: { status: String(status) }, ...attrs }, orderStatusText(status));
}

export function placeText(p) {
  if (!p) return t('none');
  return p.name || (Number.isFinite(p.lat) ? `${p.lat.toFixed(5)}, ${p.lon.toFixed(5)}` : t('none'));
}

/**
 * What `user` may do to `order` from this page (docs/dispatch.md, who may act, and the
 * transitions the status allows). The server decides; this only hides what it would refuse.
 */
export function allowedActions(user, order) {
  const role = user?.role;
  const staff = STAFF.has(role);
  const mine = staff || (role === 'unit' && user.unit_id != null && user.unit_id === order.unit_id);
  const s = order.status;
  return {
    approve: mine && s === 'pending_approval',
    reject: mine && s === 'pending_approval',
    cancel: mine && !FINAL.has(s),
    assign: staff && (s === 'approved' || s === 'assigned' || s === 'accepted'),
  };
}

/** Roles that may apply for an order on this page. */
export const mayCreate = (user) => STAFF.has(user?.role) || (user?.role === 'unit' && !!user.unit_id);

/** A failed call as a sentence for the user. */
export function errorText(e) {
  if (!(e instanceof ApiError)) return t('err.other', { message: String(e?.message ?? e) });
  const { status, code, message } = e;
  if (status === 0) return t('err.network');
  if (code === 'vehicle_busy' || code === 'invalid_transition' || code === 'budget_exhausted') return t(`err.${code}`);
  if (status === 409 && /driver/i.test(message)) return t('err.no_driver');
  if (status === 409) return t('err.conflict', { message });
  if (status === 403) return t('err.forbidden');
  if (status === 404) return t('err.not_found');
  if (status === 422 || status === 400) return t('err.validation', { message });
  return t('err.other', { message });
}

/** True when a retry could not have been answered already (nothing kept for the key). */
export const isTransient = (e) => !(e instanceof ApiError) || e.status === 0 || e.status >= 500;

/**
 * An `Idempotency-Key` per user action: the same action retried after a failure the server
 * may not have answered (network, 5xx) reuses its key, anything else gets a fresh one.
 */
export class ActionKeys {
  constructor() {
    this.last = null; // {sig, key}
  }

  key(sig) {
    if (this.last?.sig !== sig) this.last = { sig, key: uuid() };
    return this.last.key;
  }

  /** The action got an answer (or a definite refusal): its key is spent. */
  settle(e) {
    if (!e || !isTransient(e)) this.last = null;
  }
}

/** A random (v4) UUID; crypto.randomUUID needs a secure context, getRandomValues does not. */
export function uuid() {
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const x = [...b].map((v) => v.toString(16).padStart(2, '0')).join('');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

/** Midnight today in Asia/Shanghai (UTC+8 all year). */
export function startOfToday(now = Date.now()) {
  const d = new Date(now + 8 * 3600e3);
  d.setUTCHours(0, 0, 0, 0);
  return new Date(d.getTime() - 8 * 3600e3);
}

/** The order list (#order-list) with its filter chips (#order-filters) and tab badge. */
export class OrderList {
  /**
   * @param {object} o
   * @param {(unitId: string) => string} o.unitName
   * @param {(vin: string) => string} o.plateOf
   * @param {(driverId: string) => string} o.driverName
   * @param {(id: string) => void} o.onOpen  a row was clicked
   */
  constructor({ list, chips, badge, unitName, plateOf, driverName, onOpen }) {
    this.list = list;
    this.chips = chips;
    this.badge = badge;
    this.unitName = unitName;
    this.plateOf = plateOf;
    this.driverName = driverName;
    this.onOpen = onOpen;
    this.orders = new Map(); // id → order
    this.finishedAt = new Map(); // id → ms, orders seen turning final in this session
    this.unitFilter = null;
    this.available = true;
    this.selected = null;
    this.filter = readFilter();
    const open = (ev) => {
      const row = ev.target.closest('li[data-order]');
      if (!row || (ev.type === 'keydown' && ev.key !== 'Enter' && ev.key !== ' ')) return;
      ev.preventDefault();
      this.onOpen(row.dataset.order);
    };
    list.addEventListener('click', open);
    list.addEventListener('keydown', open);
    chips.addEventListener('click', (ev) => {
      const chip = ev.target.closest('[data-filter]');
      if (chip) this.setFilter(chip.dataset.filter);
    });
  }

  setFilter(name) {
    if (!(name in FILTERS)) return;
    this.filter = name;
    try {
      sessionStorage.setItem(FILTER_KEY, name);
    } catch {
      /* not remembered */
    }
    this.render();
  }

  /** Every order from `GET /api/v1/orders` (null when the route is not there). */
  replaceAll(orders) {
    this.available = orders != null;
    this.orders = new Map();
    for (const o of orders ?? []) if (o && o.id != null) this.orders.set(String(o.id), o);
    this.render();
  }

  /** A changed order (live event or an action's answer). */
  upsert(order) {
    if (!order || order.id == null) return;
    const id = String(order.id);
    this.available = true;
    if (FINAL.has(order.status) && !FINAL.has(this.orders.get(id)?.status)) this.finishedAt.set(id, Date.now());
    this.orders.set(id, order);
    this.render();
  }

  get(id) {
    return this.orders.get(String(id)) ?? null;
  }

  setUnitFilter(unitId) {
    this.unitFilter = unitId || null;
    this.render();
  }

  select(id) {
    this.selected = id == null ? null : String(id);
    for (const row of this.list.children) row.classList.toggle('selected', row.dataset.order === this.selected);
  }

  clear() {
    this.orders.clear();
    this.finishedAt.clear();
    this.selected = null;
    this.render();
  }

  /** Final orders count as "done today" when picked up today or finished while watched. */
  isToday(o) {
    const today = startOfToday().getTime();
    return (this.finishedAt.get(String(o.id)) ?? 0) >= today || Date.parse(o.pickup_at) >= today;
  }

  matching(name) {
    const test = FILTERS[name];
    return [...this.orders.values()].filter((o) => (!this.unitFilter || o.unit_id === this.unitFilter)
      && test(o) && (name !== 'done' || this.isToday(o)));
  }

  render() {
    const counts = {};
    for (const name of Object.keys(FILTERS)) counts[name] = this.matching(name).length;
    for (const chip of this.chips.querySelectorAll('[data-filter]')) {
      const name = chip.dataset.filter;
      chip.setAttribute('aria-pressed', String(name === this.filter));
      replaceChildren(chip, t(`orders.filter.${name}`), h('span', { class: 'chip-count' }, String(counts[name])));
    }
    // Open orders soonest pickup first (what needs doing next); done ones latest first.
    const dir = this.filter === 'done' ? -1 : 1;
    const orders = this.matching(this.filter).sort((a, b) => dir * (Date.parse(a.pickup_at) - Date.parse(b.pickup_at))
      || String(a.id).localeCompare(String(b.id)));
    replaceChildren(this.list, orders.map((o) => this.row(o)));
    let empty = this.list.parentNode.querySelector('.list-empty');
    if (!empty) {
      empty = h('p', { class: 'list-empty' });
      this.list.after(empty);
    }
    empty.hidden = orders.length > 0;
    empty.textContent = this.available ? t('orders.empty', { filter: t(`orders.filter.${this.filter}`) }) : t('orders.unavailable');
    // The tab's badge: what waits for someone's decision (approval or a car).
    const n = counts.pending + counts.waiting;
    this.badge.textContent = String(n);
    this.badge.hidden = n === 0;
  }

  row(o) {
    const id = String(o.id);
    return h('li', {
      class: `orow${id === this.selected ? ' selected' : ''}`, tabindex: '0', role: 'button',
      dataset: { order: id, status: String(o.status), vin: o.vin ?? '' },
    },
    h('div', { class: 'orow-head' },
      orderStatusBadge(o.status),
      h('span', { class: 'order-unit' }, this.unitName(o.unit_id)),
      h('span', { class: 'order-time' }, formatTime(o.pickup_at))),
    h('div', { class: 'order-route' },
      h('span', { class: 'from' }, placeText(o.pickup)), h('span', { class: 'arrow', 'aria-hidden': 'true' }, '→'),
      h('span', { class: 'to' }, placeText(o.dropoff))),
    h('div', { class: 'order-meta' },
      h('span', null, t('orders.passengers', { n: o.passengers ?? '?' })),
      o.vin ? h('span', { class: 'order-vin' }, this.plateOf(o.vin)) : null,
      o.driver_id ? h('span', { class: 'order-driver' }, this.driverName(o.driver_id)) : null,
      h('span', { class: 'order-id' }, `#${id}`)),
    o.unmatched_reason
      ? h('div', { class: 'order-unmatched', dataset: { reason: o.unmatched_reason } },
        `${t('orders.unmatched')}${t('colon')}${waitReasonText(o.unmatched_reason)}`)
      : null);
  }
}

function readFilter() {
  try {
    const v = sessionStorage.getItem(FILTER_KEY);
    return v in FILTERS ? v : 'pending';
  } catch {
    return 'pending';
  }
}
