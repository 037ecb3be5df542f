// What the driver's page shows, built from plain data: the car strip, an order card (the
// current one large, later ones compact), and today's trips. Server data reaches the page
// only as text (dom.js `h`), never as markup.

import { h } from '../lib/dom.js';
import { t, formatTime, formatNumber, formatUnit } from '../lib/i18n.js';
import { roadKm, reservePct } from './charge.js';

const LOW_SOC_PCT = 30;

/** The car strip: plate, status, charge, range, odometer, and the charge warning. */
export function carView(car, check) {
  if (!car) {
    return [h('p', { class: 'drv-muted' }, t('drv.car.none'))];
  }
  const s = car.state;
  const soc = s?.soc_pct;
  const status = s?.status ?? 'offline';
  const socClass = !Number.isFinite(soc) ? '' : soc < reservePct() ? 'drv-soc-bad' : soc < LOW_SOC_PCT ? 'drv-soc-low' : '';
  const bar = h('span', { class: 'drv-battery', 'aria-hidden': 'true' },
    h('span', { class: `drv-battery-fill ${socClass}`, style: `width:${Number.isFinite(soc) ? Math.max(2, Math.min(100, soc)) : 0}%` }));
  const stat = (key, value, id) => h('div', { class: 'drv-stat' },
    h('span', { class: 'drv-stat-label' }, t(key)),
    h('span', { class: 'drv-stat-value', id }, value));
  const charging = s?.charging === true;
  const nodes = [
    h('div', { class: 'drv-car-head' },
      h('div', { class: 'drv-car-id' },
        h('span', { class: 'drv-plate', id: 'car-plate' }, car.plate ?? car.vin),
        h('span', { class: 'drv-model' }, car.model ?? '')),
      h('span', { class: `drv-status drv-status-${status}`, id: 'car-status', dataset: { status } }, t(`status.${status}`))),
    h('div', { class: 'drv-soc-row' },
      h('span', { id: 'car-soc', class: `drv-soc ${socClass}`, dataset: { soc: Number.isFinite(soc) ? String(soc) : '' } },
        formatUnit('unit.pct', soc, 0)),
      bar,
      charging ? h('span', { class: 'drv-charging' }, t('drv.car.charging')) : null),
    h('div', { class: 'drv-stats' },
      stat('drv.car.range', formatUnit('unit.km', s?.range_km, 0), 'car-range'),
      stat('drv.car.odometer', formatUnit('unit.km', s?.odometer_km, 0), 'car-odometer'),
      stat('drv.car.updated', s?.ts ? formatTime(s.ts) : t('none'), 'car-updated')),
  ];
  const warn = h('p', { id: 'charge-warning', class: 'drv-warning', role: 'alert', hidden: !(check && !check.ok) });
  if (check && !check.ok) {
    warn.textContent = t('drv.charge.warn', {
      need: formatNumber(check.needKwh, 1),
      have: formatNumber(Math.max(0, check.haveKwh), 1),
      km: formatNumber(check.km, 1),
      reserve: reservePct(),
    });
  }
  nodes.push(warn);
  if (!s) nodes.push(h('p', { class: 'drv-muted' }, t('drv.car.nostate')));
  return nodes;
}

function place(kind, p) {
  return h('div', { class: `drv-place drv-place-${kind}` },
    h('span', { class: 'drv-place-dot', 'aria-hidden': 'true' }, t(`drv.pin.${kind}`)),
    h('div', { class: 'drv-place-text' },
      h('span', { class: 'drv-place-label' }, t(`drv.${kind}`)),
      h('span', { class: 'drv-place-name' }, p?.name || t('none'))));
}

function fact(key, value, cls = '') {
  return h('div', { class: `drv-fact ${cls}` }, h('span', { class: 'drv-fact-label' }, t(key)), h('span', { class: 'drv-fact-value' }, value));
}

/**
 * An order card. `o`: `{order, current, pending, unitName, carState, secondsLeft, mapEl,
 * locked, onAction}` (`locked`: the buttons are grey for a moment after a tap); the current
 * card carries the test ids (#current-order, #accept, …).
 */
export function orderCard({ order, current, pending, unitName, carState, secondsLeft, mapEl, locked, onAction }) {
  const id = (name) => (current ? name : null);
  const status = order.status;
  const toPickup = status !== 'picked_up' && carState && Number.isFinite(carState.lat)
    ? roadKm(carState, order.pickup) : null;
  const head = h('div', { class: 'drv-order-head' },
    h('span', { class: `drv-ostatus drv-ostatus-${status}` }, t(`drv.status.${status}`)),
    pending ? h('span', { class: 'drv-tag-pending' }, t('drv.pending.tag')) : null,
    status === 'assigned' ? countdownView(secondsLeft, current) : null);
  const facts = h('div', { class: 'drv-facts' },
    fact('drv.time', formatTime(order.pickup_at), 'drv-fact-time'),
    fact('drv.passengers', t('drv.passengers.n', { n: order.passengers })),
    fact('drv.purpose', order.purpose || t('none')),
    fact('drv.unit', unitName));
  const route = h('div', { class: 'drv-route' },
    place('pickup', order.pickup),
    place('dropoff', order.dropoff),
    toPickup != null ? h('p', { class: 'drv-distance' }, t('drv.distance', { km: formatUnit('unit.km', toPickup, 1) })) : null);

  const btn = (action, cls, label, extra = {}) => h('button', {
    type: 'button',
    id: id(action),
    class: `drv-btn ${cls}`,
    dataset: { action, order: order.id },
    onclick: () => onAction(order, action),
    disabled: locked,
    ...extra,
  }, t(label));
  let actions;
  if (status === 'assigned') {
    const over = secondsLeft === 0;
    actions = h('div', { class: 'drv-actions' },
      btn('decline', 'drv-btn-ghost', 'drv.decline', { disabled: over || locked }),
      btn('accept', 'drv-btn-primary drv-btn-grow', 'drv.accept', { disabled: over || locked }));
  } else if (status === 'accepted') {
    actions = h('div', { class: 'drv-actions' }, btn('pickup', 'drv-btn-primary drv-btn-grow', 'drv.pickup.btn'));
  } else if (status === 'picked_up') {
    actions = h('div', { class: 'drv-actions' }, btn('complete', 'drv-btn-ok drv-btn-grow', 'drv.complete.btn'));
  }
  return h('article', {
    id: id('current-order'),
    class: `drv-card drv-order ${current ? 'drv-order-current' : 'drv-order-next'} drv-order-${status}`,
    dataset: { orderId: order.id, status },
  }, head, route, facts, current && mapEl ? mapEl : null, actions);
}

/** The accept countdown; `seconds` null while the deadline is unknown. */
export function countdownView(seconds, current) {
  const el = h('span', { id: current ? 'countdown' : null, class: 'drv-countdown' });
  setCountdown(el, seconds);
  return el;
}

/** Updates a countdown element in place (every second, without rebuilding the card). */
export function setCountdown(el, seconds) {
  el.dataset.seconds = seconds == null ? '' : String(seconds);
  el.classList.toggle('drv-countdown-urgent', seconds != null && seconds <= 10);
  el.classList.toggle('drv-countdown-over', seconds === 0);
  el.textContent = seconds == null ? '' : seconds === 0 ? t('drv.countdown.over') : t('drv.countdown', { s: seconds });
}

/** The empty state when no order is active. */
export function noOrderView() {
  return h('div', { class: 'drv-card drv-empty', id: 'no-order' },
    h('p', { class: 'drv-empty-title' }, t('drv.none')),
    h('p', { class: 'drv-muted' }, t('drv.none.hint')));
}

/** Before the first answer (and with no offline copy): not "no jobs", which may be untrue. */
export function loadingView() {
  return h('div', { class: 'drv-card drv-empty', id: 'orders-loading' }, h('p', { class: 'drv-muted' }, t('drv.loading')));
}

/** Today's trips and this month's count. `trips`: `{order, pending}` newest first. */
export function tripsView(trips, monthCount) {
  const list = trips.length
    ? h('ol', { class: 'drv-trip-list' }, trips.map(({ order, pending }) => h('li', { class: 'drv-trip', dataset: { orderId: order.id } },
      h('span', { class: 'drv-trip-time' }, formatTime(order.pickup_at)),
      h('span', { class: 'drv-trip-route' }, `${order.pickup?.name ?? ''} → ${order.dropoff?.name ?? ''}`),
      pending ? h('span', { class: 'drv-tag-pending' }, t('drv.pending.tag')) : null)))
    : h('p', { class: 'drv-muted' }, t('drv.trips.empty'));
  return [
    h('h2', { class: 'drv-h2' }, t('drv.trips.title')),
    h('div', { class: 'drv-trip-counts' },
      h('span', { id: 'trips-today', class: 'drv-count', dataset: { count: String(trips.length) } }, t('drv.trips.today.n', { n: trips.length })),
      h('span', { id: 'trips-month', class: 'drv-count drv-count-month', dataset: { count: monthCount == null ? '' : String(monthCount) } },
        monthCount == null ? '' : t('drv.trips.month.n', { n: monthCount }))),
    list,
  ];
}
