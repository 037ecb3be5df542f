// The new-order card (#order-new-form): a dispatcher books a trip for a unit (a unit user for
// its own), with pickup and dropoff typed in or clicked on the map (`POST /api/v1/orders`).

/* global L */

import { api } from '../lib/api.js';
import { byId, h, replaceChildren, escapeHtml } from '../lib/dom.js';
import { t } from '../lib/i18n.js';
import { toDisplay, fromDisplay } from '../lib/coords.js';
import { ActionKeys, errorText } from './orders.js';

const POINTS = ['pickup', 'dropoff'];

export class OrderForm {
  /**
   * @param {object} o
   * @param {L.Map} o.map
   * @param {() => object} o.user
   * @param {() => Array<[string, string]>} o.units  `[id, name]` of the units one may book for
   * @param {(order: object) => void} o.onCreated
   * @param {() => void} o.onOpen  the card is about to show (other cards close)
   */
  constructor(o) {
    Object.assign(this, o);
    this.root = byId('order-new-form');
    this.keys = new ActionKeys();
    this.arming = null; // which point the next map click sets
    this.busy = false;
    this.error = null;
    this.pins = L.layerGroup().addTo(this.map);
    this.map.on('click', (ev) => this.mapClick(ev));
    this.build();
  }

  build() {
    const input = (id, attrs = {}) => h('input', { id: `nf-${id}`, class: 'input', autocomplete: 'off', ...attrs });
    this.el = {
      unit: h('select', { id: 'nf-unit', class: 'select' }),
      passengers: input('passengers', { type: 'number', min: '1', max: '50', step: '1', value: '1' }),
      time: input('time', { type: 'datetime-local' }),
      purpose: input('purpose', { type: 'text', maxlength: '200' }),
    };
    this.labels = [];
    const label = (key, forId, el) => {
      const l = h('label', { for: forId, class: 'form-label' });
      this.labels.push([l, key]);
      return h('div', { class: 'field' }, l, el);
    };
    this.pointBoxes = POINTS.map((p) => {
      const name = input(`${p}-name`, { type: 'text', maxlength: '100' });
      const lat = input(`${p}-lat`, { type: 'number', step: 'any', inputmode: 'decimal' });
      const lon = input(`${p}-lon`, { type: 'number', step: 'any', inputmode: 'decimal' });
      for (const el of [lat, lon]) el.addEventListener('change', () => this.renderPins());
      const pick = h('button', { id: `nf-${p}-pick`, type: 'button', class: 'btn btn-small', onclick: () => this.arm(this.arming === p ? null : p) });
      const legend = h('legend');
      this.el[p] = { name, lat, lon, pick, legend };
      return h('fieldset', { class: 'nf-point', dataset: { point: p } }, legend, name,
        h('div', { class: 'nf-coords' }, lat, lon, pick));
    });
    this.errorEl = h('p', { id: 'nf-error', class: 'form-error', role: 'alert', hidden: true });
    this.submit = h('button', { id: 'nf-submit', type: 'submit', class: 'btn btn-primary' });
    this.cancelBtn = h('button', { id: 'nf-cancel', type: 'button', class: 'btn', onclick: () => this.close() });
    this.title = h('h2', { class: 'detail-plate' });
    this.closeBtn = h('button', { type: 'button', class: 'icon-btn', onclick: () => this.close() }, '×');
    this.hint = h('p', { class: 'track-info' });
    const form = h('form', { class: 'nf', novalidate: true, onsubmit: (ev) => { ev.preventDefault(); this.send(); } },
      label('nf.unit', 'nf-unit', this.el.unit),
      label('od.passengers', 'nf-passengers', this.el.passengers),
      this.pointBoxes,
      label('nf.time', 'nf-time', this.el.time), this.hint,
      label('orders.purpose', 'nf-purpose', this.el.purpose),
      this.errorEl,
      h('div', { class: 'order-actions' }, this.submit, this.cancelBtn));
    replaceChildren(this.root, h('div', { class: 'detail-head' }, this.title, this.closeBtn), form);
  }

  get isOpen() {
    return !this.root.hidden;
  }

  open() {
    this.onOpen();
    for (const p of POINTS) for (const k of ['name', 'lat', 'lon']) this.el[p][k].value = '';
    this.el.passengers.value = '1';
    this.el.time.value = '';
    this.el.purpose.value = '';
    this.error = null; // () => text
    this.keys = new ActionKeys();
    this.root.hidden = false;
    this.relabel();
    this.arm('pickup');
    this.el.unit.focus();
  }

  close() {
    if (this.root.hidden) return;
    this.arm(null);
    this.pins.clearLayers();
    this.root.hidden = true;
  }

  /** The next click on the map sets `point` (or nothing, with null). */
  arm(point) {
    this.arming = point;
    this.map.getContainer().classList.toggle('picking', point != null);
    this.relabel();
  }

  mapClick(ev) {
    if (!this.isOpen || !this.arming) return;
    const [lat, lon] = fromDisplay(ev.latlng.lat, ev.latlng.lng);
    const p = this.arming;
    this.el[p].lat.value = lat.toFixed(6);
    this.el[p].lon.value = lon.toFixed(6);
    this.renderPins();
    const next = POINTS.find((q) => q !== p && !this.el[q].lat.value);
    this.arm(next ?? null);
    if (!this.el[p].name.value) this.el[p].name.focus();
  }

  point(p) {
    const lat = Number.parseFloat(this.el[p].lat.value);
    const lon = Number.parseFloat(this.el[p].lon.value);
    return { lat, lon, name: this.el[p].name.value.trim() };
  }

  renderPins() {
    this.pins.clearLayers();
    for (const p of POINTS) {
      const { lat, lon } = this.point(p);
      if (!Number.isFinite(lat) || !Number.isFinite(lon)) continue;
      L.marker(toDisplay(lat, lon), {
        icon: L.divIcon({ className: `order-pin ${p} draft`, html: `<span><b>${escapeHtml(t(`pin.${p}`))}</b></span>`, iconSize: [26, 34], iconAnchor: [13, 31] }),
        keyboard: false, interactive: false,
      }).addTo(this.pins);
    }
  }

  reproject() {
    this.renderPins();
  }

  relabel() {
    if (!this.isOpen) return;
    this.title.textContent = t('nf.title');
    this.closeBtn.setAttribute('aria-label', t('detail.close'));
    this.root.setAttribute('aria-label', t('nf.title'));
    for (const [l, key] of this.labels) l.textContent = t(key);
    for (const p of POINTS) {
      const e = this.el[p];
      e.legend.textContent = t(`od.${p}`);
      e.name.placeholder = t('nf.name');
      e.name.setAttribute('aria-label', `${t(`od.${p}`)} ${t('nf.name')}`);
      e.lat.placeholder = t('nf.lat');
      e.lat.setAttribute('aria-label', `${t(`od.${p}`)} ${t('nf.lat')}`);
      e.lon.placeholder = t('nf.lon');
      e.lon.setAttribute('aria-label', `${t(`od.${p}`)} ${t('nf.lon')}`);
      e.pick.textContent = t(this.arming === p ? 'nf.picking' : 'nf.pick');
      e.pick.setAttribute('aria-pressed', String(this.arming === p));
    }
    this.hint.textContent = t('nf.time.hint');
    const user = this.user();
    const units = this.units();
    const keep = this.el.unit.value || (user.role === 'unit' ? user.unit_id : '');
    replaceChildren(this.el.unit, units.map(([id, name]) => h('option', { value: id }, name)));
    if (keep) this.el.unit.value = keep;
    this.el.unit.disabled = user.role === 'unit';
    this.submit.textContent = t(this.busy ? 'od.busy' : 'nf.submit');
    this.submit.disabled = this.busy;
    this.cancelBtn.textContent = t('od.back');
    this.errorEl.hidden = !this.error;
    this.errorEl.textContent = this.error?.() ?? '';
  }

  /** The body to send, or the dictionary keys of what is missing. */
  body() {
    const missing = [];
    const passengers = Number.parseInt(this.el.passengers.value, 10);
    if (!this.el.unit.value) missing.push('nf.unit');
    if (!(passengers >= 1 && passengers <= 50)) missing.push('od.passengers');
    const places = {};
    for (const p of POINTS) {
      const pt = this.point(p);
      const ok = pt.name && Number.isFinite(pt.lat) && Math.abs(pt.lat) <= 90 && Number.isFinite(pt.lon) && Math.abs(pt.lon) <= 180;
      if (!ok) missing.push(`od.${p}`);
      places[p] = pt;
    }
    // The time is read in Zhoushan's zone whatever the browser's own; empty means now.
    const v = this.el.time.value; // 2026-05-01T10:30, or with seconds
    const at = v ? new Date(`${v.length === 16 ? `${v}:00` : v}+08:00`) : null;
    if (at && Number.isNaN(at.getTime())) missing.push('nf.time');
    const purpose = this.el.purpose.value.trim();
    if (!purpose) missing.push('orders.purpose');
    if (missing.length) return { missing };
    const body = { unit_id: this.el.unit.value, passengers, ...places, purpose };
    if (at) body.pickup_at = at.toISOString();
    return { body };
  }

  async send() {
    if (this.busy) return;
    const { body, missing } = this.body();
    if (missing) {
      this.error = () => t('nf.missing', { fields: missing.map((k) => t(k)).join(t('list.sep')) });
      this.relabel();
      return;
    }
    const key = this.keys.key(JSON.stringify(body));
    this.busy = true;
    this.error = null;
    this.relabel();
    try {
      const order = await api('/orders', { method: 'POST', body, headers: { 'Idempotency-Key': key } });
      this.keys.settle(null);
      this.busy = false;
      this.close();
      this.onCreated(order);
    } catch (e) {
      this.keys.settle(e);
      this.error = () => errorText(e);
    } finally {
      this.busy = false;
      this.relabel();
    }
  }
}
