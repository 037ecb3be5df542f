// The order details card (#order-detail): the order, its history (`GET /api/v1/orders/{id}`),
// the actions the signed-in user may take in its status, a car picker for a manual
// assignment (nearest first, from the page's live states), and pickup/dropoff pins on the map.

/* global L */

import { api } from '../lib/api.js';
import { byId, h, replaceChildren, escapeHtml } from '../lib/dom.js';
import { t, lang, formatDateTime, formatTime, formatNumber } from '../lib/i18n.js';
import { toDisplay, hasPosition, distanceKm } from '../lib/coords.js';
import { isLowSoc } from './cars.js';
import { statusChip, socView, normalizePlate, comparePlates } from './panel.js';
import {
  ActionKeys, allowedActions, errorText, orderStatusBadge, orderStatusText, placeText, tOr, waitReasonText,
} from './orders.js';

/** Cars listed in the picker at most (the nearest); the plate search finds the others. */
const MAX_CARS = 40;
/** While the picker is open its distances and statuses are refreshed this often. */
const PICKER_REFRESH_MS = 3000;
const ACTIONS = ['approve', 'reject', 'cancel', 'assign'];
/** Actions that ask for a reason first (required), and the one that takes an optional note. */
const NEEDS_REASON = new Set(['reject', 'cancel']);

export class OrderDetail {
  /**
   * @param {object} o
   * @param {L.Map} o.map
   * @param {() => object} o.user  the signed-in user
   * @param {() => object[]} o.cars  the live states of every car the page knows
   * @param {(unitId: string) => string} o.unitName
   * @param {(vin: string) => string} o.plateOf
   * @param {(driverId: string) => object|null} o.driver  `{name, phone}` when known
   * @param {(vin: string) => object|null} o.vehicle  the registry entry (`seats`, driver) when known
   * @param {() => number} o.lowSoc
   * @param {(order: object) => void} o.onChanged  an action changed the order
   * @param {(id: string|null) => void} o.onSelect  the card opened on an order, or closed
   * @param {() => {left: number, bottom: number, right: number}} o.cover  map pixels hidden by cards
   */
  constructor(o) {
    Object.assign(this, o);
    this.root = byId('order-detail');
    this.id = null;
    this.order = null; // with `events` once loaded
    this.error = null; // () => text, so a language switch retranslates it
    this.loadError = null; // likewise
    this.mode = null; // null | 'reject' | 'cancel' | 'assign'
    this.chosen = null; // the VIN chosen in the picker
    this.busy = false;
    this.seq = 0;
    this.keys = new ActionKeys();
    this.pickerTimer = null;
    this.pins = L.layerGroup().addTo(this.map);
    this.build();
    document.addEventListener('keydown', (ev) => {
      if (ev.key !== 'Escape' || !this.id || ev.defaultPrevented) return;
      ev.preventDefault();
      if (this.mode) this.setMode(null);
      else this.close();
    });
  }

  build() {
    const btn = (action, cls) => h('button', {
      id: `order-${action}`, type: 'button', class: `btn ${cls}`, dataset: { action },
      onclick: () => (action === 'approve' ? this.run('approve') : this.setMode(action)),
    });
    this.title = h('h2', { id: 'order-detail-title', class: 'detail-plate' });
    this.badge = h('span');
    this.closeBtn = h('button', { id: 'order-detail-close', type: 'button', class: 'icon-btn', onclick: () => this.close() }, '×');
    this.fields = h('dl', { class: 'detail-fields' });
    this.buttons = {
      approve: btn('approve', 'btn-primary'), reject: btn('reject', 'btn-danger-ghost'),
      cancel: btn('cancel', 'btn-danger-ghost'), assign: btn('assign', 'btn-primary'),
    };
    this.actions = h('div', { class: 'order-actions' }, ACTIONS.map((a) => this.buttons[a]));
    this.formLabel = h('label', { for: 'order-reason', class: 'form-label' });
    this.reason = h('textarea', { id: 'order-reason', class: 'input', rows: '2', maxlength: '500' });
    this.search = h('input', {
      id: 'order-car-search', type: 'search', class: 'search', autocomplete: 'off', spellcheck: 'false',
      oninput: () => this.renderCars(),
    });
    this.carList = h('ul', { id: 'order-cars', class: 'list car-pick', role: 'listbox' });
    this.carList.addEventListener('click', (ev) => {
      const row = ev.target.closest('li[data-vin]');
      if (row) this.choose(row.dataset.vin);
    });
    this.carNote = h('p', { class: 'track-info' });
    this.pickerTitle = h('h3', { class: 'detail-section' });
    this.picker = h('div', { class: 'order-picker' }, this.pickerTitle, this.search, this.carList, this.carNote);
    this.confirmBtn = h('button', { id: 'order-confirm', type: 'button', class: 'btn btn-primary', onclick: () => this.confirm() });
    this.backBtn = h('button', { id: 'order-back', type: 'button', class: 'btn', onclick: () => this.setMode(null) });
    this.form = h('div', { class: 'order-form-box' },
      this.picker, this.formLabel, this.reason, h('div', { class: 'order-actions' }, this.confirmBtn, this.backBtn));
    this.errorEl = h('p', { id: 'order-error', class: 'form-error', role: 'alert', hidden: true });
    this.historyTitle = h('h3', { class: 'detail-section' });
    this.history = h('ol', { id: 'order-history', class: 'timeline' });
    replaceChildren(this.root,
      h('div', { class: 'detail-head' }, h('div', { class: 'detail-title' }, this.title, this.badge), this.closeBtn),
      this.fields, this.errorEl, this.actions, this.form,
      h('div', { class: 'detail-track' }, this.historyTitle, this.history));
  }

  /** Opens the card on order `id` (or moves it to another order); resolves once loaded. */
  async open(id, known = null) {
    id = String(id);
    if (this.id !== id) {
      this.id = id;
      this.order = known;
      this.error = null;
      this.loadError = null;
      this.setMode(null, false);
      this.fitted = false;
    }
    this.root.hidden = false;
    this.onSelect(id);
    this.render();
    await this.load();
  }

  close() {
    if (!this.id) return;
    this.setMode(null, false);
    this.id = null;
    this.order = null;
    this.pins.clearLayers();
    this.root.hidden = true;
    this.onSelect(null);
  }

  /** A live change of some order: the open one is reloaded with its history. */
  changed(order) {
    if (!this.id || String(order?.id) !== this.id) return;
    if (order.status !== this.order?.status) this.error = null; // moved on: an old error no longer applies
    this.order = { ...order, events: this.order?.events ?? [] };
    this.render();
    this.load();
  }

  async load() {
    const id = this.id;
    if (!id) return;
    const seq = ++this.seq;
    try {
      const order = await api(`/orders/${encodeURIComponent(id)}`);
      if (seq !== this.seq || id !== this.id) return;
      this.order = order;
      this.loadError = null;
    } catch (e) {
      if (seq !== this.seq || id !== this.id) return;
      this.loadError = () => errorText(e);
    }
    this.render();
  }

  setMode(mode, render = true) {
    this.mode = mode;
    this.chosen = null;
    this.reason.value = '';
    this.search.value = '';
    this.carSig = null;
    if (mode) this.error = null;
    clearInterval(this.pickerTimer);
    this.pickerTimer = mode === 'assign' ? setInterval(() => this.renderCars(), PICKER_REFRESH_MS) : null;
    if (render) {
      this.render();
      if (mode === 'assign') this.search.focus();
      else if (mode) this.reason.focus();
    }
  }

  /** A car clicked on the map while the picker is open chooses it; answers whether it did. */
  pickFromMap(vin) {
    if (this.mode !== 'assign') return false;
    this.choose(vin);
    this.carList.querySelector(`li[data-vin="${CSS.escape(vin)}"]`)?.scrollIntoView({ block: 'nearest' });
    return true;
  }

  choose(vin) {
    const car = this.cars().find((c) => c.vin === vin);
    if (!car || this.unavailable(car)) return;
    this.chosen = vin;
    this.renderForm();
  }

  confirm() {
    const reason = this.reason.value.trim();
    if (NEEDS_REASON.has(this.mode) && !reason) {
      this.showError(() => t('od.reason.required'));
      this.reason.focus();
      return;
    }
    if (this.mode === 'assign') {
      if (this.chosen) this.run('assign', { vin: this.chosen, ...(reason ? { reason } : {}) });
    } else if (this.mode) {
      this.run(this.mode, { reason });
    }
  }

  /** Sends one action with its Idempotency-Key; the answer updates the list and the card. */
  async run(action, body = {}) {
    const id = this.id;
    if (!id || this.busy) return;
    const key = this.keys.key(`${id}|${action}|${JSON.stringify(body)}`);
    this.busy = true;
    this.error = null;
    this.render();
    try {
      const order = await api(`/orders/${encodeURIComponent(id)}/${action}`, {
        method: 'POST', body, headers: { 'Idempotency-Key': key },
      });
      this.keys.settle(null);
      this.onChanged(order);
      if (id === this.id) {
        this.order = { ...order, events: this.order?.events ?? [] };
        this.setMode(null, false);
      }
    } catch (e) {
      this.keys.settle(e);
      if (id === this.id) this.error = () => errorText(e);
    } finally {
      this.busy = false;
    }
    if (id === this.id) {
      this.render();
      await this.load();
    }
  }

  showError(text) {
    this.error = text; // a function answering the text
    this.renderError();
  }

  // ---- rendering ----

  render() {
    if (!this.id) return;
    const o = this.order;
    this.title.textContent = `${t('od.title')} #${this.id}`;
    replaceChildren(this.badge, o ? orderStatusBadge(o.status, { id: 'order-detail-status' }) : null);
    this.closeBtn.title = t('detail.close');
    this.closeBtn.setAttribute('aria-label', t('detail.close'));
    this.root.setAttribute('aria-label', t('od.title'));
    this.renderFields();
    // Actions the user may take now; a form for one that needs more than a click.
    const allowed = o ? allowedActions(this.user(), o) : {};
    if (this.mode && !allowed[this.mode]) this.setMode(null, false);
    for (const a of ACTIONS) {
      const b = this.buttons[a];
      b.hidden = !allowed[a] || this.mode != null;
      b.disabled = this.busy;
      b.textContent = t(a === 'assign' && o?.vin ? 'od.reassign' : `od.${a}`);
    }
    this.actions.hidden = !ACTIONS.some((a) => allowed[a]) || this.mode != null;
    this.renderForm();
    this.renderError();
    this.renderHistory();
    this.renderPins();
  }

  renderFields() {
    const o = this.order;
    if (!o) {
      replaceChildren(this.fields, h('dd', null, this.loadError?.() ?? t('detail.loading')));
      return;
    }
    const driver = o.driver_id ? this.driver(o.driver_id) : null;
    const row = (key, value, cls) => [h('dt', null, t(key)), h('dd', cls ? { class: cls } : null, value)];
    replaceChildren(this.fields,
      row('orders.unit', this.unitName(o.unit_id)),
      row('orders.pickup_at', formatDateTime(o.pickup_at)),
      row('od.pickup', placeText(o.pickup)),
      row('od.dropoff', placeText(o.dropoff)),
      row('od.passengers', t('orders.passengers', { n: o.passengers ?? '?' })),
      row('orders.purpose', o.purpose || t('none')),
      row('orders.vehicle', o.vin ? this.plateOf(o.vin) : t('none'), o.vin ? 'od-vehicle' : null),
      o.driver_id ? row('orders.driver', driver ? `${driver.name}${driver.phone ? ` ${driver.phone}` : ''}` : o.driver_id) : null,
      o.unmatched_reason ? row('orders.unmatched', waitReasonText(o.unmatched_reason), 'od-waiting') : null,
      this.loadError ? h('dd', { class: 'od-load-error' }, this.loadError()) : null);
  }

  renderForm() {
    const mode = this.mode;
    this.form.hidden = !mode;
    if (!mode) return;
    this.picker.hidden = mode !== 'assign';
    this.formLabel.textContent = t(`od.reason.${mode}`);
    this.reason.placeholder = t(NEEDS_REASON.has(mode) ? 'od.reason.placeholder' : 'od.reason.optional');
    this.reason.required = NEEDS_REASON.has(mode);
    this.backBtn.textContent = t('od.back');
    this.backBtn.disabled = this.busy;
    if (this.busy) this.confirmBtn.textContent = t('od.busy');
    else if (mode === 'assign') {
      this.confirmBtn.textContent = this.chosen ? t('od.confirm.assign', { plate: this.plateOf(this.chosen) }) : t('od.confirm.choose');
    } else this.confirmBtn.textContent = t(`od.confirm.${mode}`);
    this.confirmBtn.disabled = this.busy || (mode === 'assign' && !this.chosen);
    this.confirmBtn.classList.toggle('btn-danger', NEEDS_REASON.has(mode));
    if (mode === 'assign') {
      this.pickerTitle.textContent = t('od.cars.title');
      this.search.placeholder = t('od.cars.search');
      this.search.setAttribute('aria-label', t('od.cars.search'));
      this.renderCars();
    }
  }

  /** Why a car cannot be chosen (a dictionary key), or null when it can. */
  unavailable(car) {
    if (car.vin === this.order?.vin) return 'od.cars.current';
    if (!car.status || car.status === 'offline') return 'status.offline';
    if (car.status === 'maintenance') return 'status.maintenance';
    if (this.vehicle(car.vin)?.hasDriver === false) return 'od.cars.nodriver';
    return null;
  }

  renderCars() {
    const o = this.order;
    if (this.mode !== 'assign' || !o) return;
    const q = normalizePlate(this.search.value);
    const lowSoc = this.lowSoc();
    const all = this.cars()
      .filter((c) => !q || normalizePlate(c.plate ?? c.vin).includes(q))
      .map((car) => ({ car, km: hasPosition(car) && o.pickup ? distanceKm(car, o.pickup) : null }))
      .sort((a, b) => (a.km ?? Infinity) - (b.km ?? Infinity) || comparePlates(a.car, b.car));
    const shown = all.slice(0, MAX_CARS);
    if (this.chosen && !shown.some((x) => x.car.vin === this.chosen)) {
      const keep = all.find((x) => x.car.vin === this.chosen);
      if (keep) shown.push(keep);
    }
    for (const x of shown) {
      x.why = this.unavailable(x.car);
      x.seats = this.vehicle(x.car.vin)?.seats;
    }
    // Rebuilt only when what it shows changed: rows under the pointer stay put.
    const sig = [this.chosen, lang(), ...shown.map(({ car, km, why, seats }) => [car.vin, car.plate, car.status,
      Math.round(car.soc_pct), km?.toFixed(1), why, seats].join())].join('|');
    if (sig !== this.carSig) {
      this.carSig = sig;
      this.fillCars(shown, o, lowSoc);
    }
    this.carNote.textContent = all.length === 0 ? t('od.cars.empty')
      : all.length > MAX_CARS ? t('od.cars.more', { n: MAX_CARS, total: all.length }) : '';
    this.renderPins();
  }

  fillCars(shown, o, lowSoc) {
    replaceChildren(this.carList, shown.map(({ car, km, why, seats }) => {
      return h('li', {
        class: 'cpick', role: 'option', dataset: { vin: car.vin, status: car.status ?? 'unknown' },
        'aria-selected': String(car.vin === this.chosen), 'aria-disabled': why ? 'true' : null,
      },
      h('span', { class: 'plate' }, car.plate ?? car.vin),
      statusChip(car.status),
      socView(car.soc_pct, isLowSoc(car, lowSoc)),
      h('span', { class: 'cpick-km' }, km == null ? t('vehicles.nofix') : t('unit.km', { v: formatNumber(km, 1) })),
      h('span', { class: 'cpick-note' },
        why && why !== 'status.offline' && why !== 'status.maintenance' ? t(why) : null,
        seats != null ? h('span', { class: seats < o.passengers ? 'seats-short' : null }, t('detail.seats.value', { n: seats })) : null));
    }));
  }

  renderError() {
    this.errorEl.hidden = !this.error;
    this.errorEl.textContent = this.error?.() ?? '';
  }

  renderHistory() {
    this.historyTitle.textContent = t('od.history');
    const events = this.order?.events ?? [];
    if (!events.length) {
      replaceChildren(this.history, h('li', { class: 'tl-empty' }, this.order?.events ? t('od.history.empty') : t('detail.loading')));
      return;
    }
    replaceChildren(this.history, events.map((e) => h('li', { class: 'tl-item', dataset: { action: e.action, to: e.to } },
      h('div', { class: 'tl-head' },
        h('span', { class: 'tl-action' }, tOr(`action.${e.action}`, e.action)),
        h('span', { class: 'tl-actor' }, e.actor === 'dispatch' ? t('actor.dispatch') : e.actor,
          e.on_behalf ? ` ${t('od.on_behalf')}` : ''),
        h('time', { class: 'tl-time', datetime: e.ts, title: formatDateTime(e.ts) }, formatTime(e.ts))),
      h('div', { class: 'tl-change' },
        e.from ? orderStatusText(e.from) : t('none'), ' → ', orderStatusText(e.to),
        e.vin ? ` · ${this.plateOf(e.vin)}` : ''),
      e.reason ? h('div', { class: 'tl-reason' }, tOr(`reason.${e.reason}`, e.reason)) : null)));
  }

  /** Pickup and dropoff pins (and a line from the car being chosen to the pickup). */
  renderPins() {
    this.pins.clearLayers();
    const o = this.order;
    if (!o || !hasPosition(o.pickup) || !hasPosition(o.dropoff)) return;
    const at = (p) => toDisplay(p.lat, p.lon);
    const pin = (p, kind) => L.marker(at(p), {
      icon: L.divIcon({
        className: `order-pin ${kind}`, html: `<span><b>${escapeHtml(t(`pin.${kind}`))}</b></span>`, iconSize: [26, 34], iconAnchor: [13, 31],
      }),
      title: `${t(`od.${kind}`)}${t('colon')}${placeText(p)}`,
      keyboard: false,
      zIndexOffset: 2000,
    });
    L.polyline([at(o.pickup), at(o.dropoff)], { color: '#0f4c81', weight: 2, dashArray: '6 6', opacity: 0.7, interactive: false }).addTo(this.pins);
    const car = this.chosen && this.cars().find((c) => c.vin === this.chosen);
    if (car && hasPosition(car)) {
      L.polyline([at(car), at(o.pickup)], { color: '#e8a317', weight: 3, dashArray: '2 6', interactive: false }).addTo(this.pins);
    }
    pin(o.pickup, 'pickup').addTo(this.pins);
    pin(o.dropoff, 'dropoff').addTo(this.pins);
    if (!this.fitted) {
      this.fitted = true;
      const cover = this.cover();
      this.map.fitBounds(L.latLngBounds([at(o.pickup), at(o.dropoff)]), {
        paddingTopLeft: [cover.left + 40, 50], paddingBottomRight: [cover.right + 30, cover.bottom + 30], maxZoom: 15,
      });
    }
  }

  /** Pin positions in WGS-84, for tests: `{pickup: [lat, lon], dropoff: [lat, lon]}` or null. */
  pinPositions() {
    const o = this.order;
    if (!this.id || !o || this.pins.getLayers().length === 0) return null;
    return { pickup: [o.pickup.lat, o.pickup.lon], dropoff: [o.dropoff.lat, o.dropoff.lon] };
  }

  reproject() {
    this.renderPins();
  }
}
