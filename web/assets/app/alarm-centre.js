// The alarm centre: the platform's alarms nobody has acknowledged yet (geofences, the vehicle
// file, budgets, private use, cars silent on an order), read from the API when the page
// starts and every 15 s, each with an acknowledge button; their count shows on the alarms tab.
// The live alarms below it (speeding, low charge, offline) are the page's own, from the feed.

import { api } from '../lib/api.js';
import { h, replaceChildren } from '../lib/dom.js';
import { t, formatTime, formatNumber } from '../lib/i18n.js';

export const CENTRE_POLL_MS = 15_000;
/** How far back unacknowledged alarms are shown. */
const CENTRE_DAYS = 7;
/** Roles that may acknowledge (auditors read only; drivers have no alarm tab). */
const ACK_ROLES = new Set(['admin', 'dispatcher', 'unit']);

export class AlarmCentre {
  constructor({ list, badge, plateOf, onPick }) {
    this.list = list;
    this.badge = badge;
    this.plateOf = plateOf;
    this.alarms = [];
    this.canAck = false;
    list.addEventListener('click', (ev) => {
      const ack = ev.target.closest('button[data-ack]');
      if (ack) {
        ev.stopPropagation();
        this.acknowledge(ack.dataset.ack, ack);
        return;
      }
      const row = ev.target.closest('li[data-vin]');
      if (row && row.dataset.vin) onPick(row.dataset.vin);
    });
  }

  setUser(user) {
    this.canAck = ACK_ROLES.has(user?.role);
  }

  async load() {
    const from = new Date(Date.now() - CENTRE_DAYS * 86_400_000).toISOString();
    try {
      const res = await api('/alarms', { query: { unacknowledged: 'true', from } });
      this.alarms = Array.isArray(res?.alarms) ? res.alarms : [];
      this.render();
    } catch {
      // Kept as shown; the next poll tries again.
    }
  }

  async acknowledge(id, button) {
    button.disabled = true;
    try {
      await api(`/alarms/${encodeURIComponent(id)}/acknowledge`, { method: 'POST' });
      this.alarms = this.alarms.filter((a) => String(a.id) !== String(id));
      this.render();
    } catch {
      button.disabled = false;
    }
  }

  clear() {
    this.alarms = [];
    this.render();
  }

  detail(a) {
    const d = a.detail ?? {};
    if (d.geofence) return d.geofence;
    if (a.kind === 'maintenance_due') return t(`centre.due.${d.kind}`) + (d.due_on ? ` ${d.due_on}` : '');
    if (a.kind.startsWith('budget_') && Number.isFinite(d.share_pct)) return `${formatNumber(d.share_pct, 0)}%`;
    if (a.kind === 'low_soc_idle' && Number.isFinite(d.soc_pct)) return `${formatNumber(d.soc_pct, 0)}%`;
    if (a.kind === 'offline_on_order' && d.order_id) return d.order_id;
    return '';
  }

  render() {
    replaceChildren(this.list, this.alarms.map((a) => h('li', {
      class: 'arow centre-row', dataset: { id: String(a.id), kind: a.kind, vin: a.vin ?? '' },
    },
    h('span', { class: 'alarm-kind', dataset: { kind: a.kind } }, t(`centre.kind.${a.kind}`)),
    h('span', { class: 'plate' }, a.vin ? this.plateOf(a.vin) : (a.unit_id ?? '')),
    h('span', { class: 'alarm-detail' }, `${formatTime(a.ts)} ${this.detail(a)}`.trim()),
    this.canAck ? h('button', { type: 'button', class: 'btn btn-small', dataset: { ack: String(a.id) } }, t('centre.ack')) : null)));
    this.list.hidden = this.alarms.length === 0;
    this.badge.textContent = String(this.alarms.length);
    this.badge.hidden = this.alarms.length === 0;
    this.badge.title = t('centre.badge.title', { n: this.alarms.length });
  }
}
