// What the driver's page shows of one session, drawn from the session's data: the car strip,
// the current order's card with its small map, the next orders, today's trips, the count of
// taps waiting to be sent, the connection state and the offline banner, and the accept
// countdowns ticking every second. The cards themselves are built in `view.js`.

import { byId, h, replaceChildren } from '../lib/dom.js';
import { t, formatTime, formatUnit } from '../lib/i18n.js';
import { chargeCheck, roadKm } from './charge.js';
import { secondsLeft } from './clock.js';
import { MiniMap } from './minimap.js';
import { carView, orderCard, noOrderView, loadingView, tripsView, setCountdown } from './view.js';

export class Screen {
  /** @param {import('./page.js').Page} page  the session whose data is shown */
  constructor(page) {
    this.page = page;
    this.connState = 'closed';
    this.minimap = new MiniMap();
  }

  render() {
    const p = this.page;
    if (!p.alive) return;
    if (!p.isDriver) {
      replaceChildren(byId('order-slot'), noOrderView());
      byId('order-slot').querySelector('.drv-muted').textContent = t('drv.notdriver', { role: t(`role.${p.user.role}`) });
      return;
    }
    const { active, pending, trips } = p.view();
    this.setPending(p.queue.list().length);
    this.renderCar(active[0]);
    const state = p.carState();
    const cards = active.map((order, i) => orderCard({
      order,
      current: i === 0,
      pending: pending.has(order.id),
      unitName: p.unitName(order.unit_id),
      carState: state,
      secondsLeft: order.status === 'assigned' && p.deadline(order) != null ? secondsLeft(p.deadline(order)) : null,
      mapEl: this.minimap.el,
      locked: p.tapLocked,
      onAction: (o, action) => p.onAction(o, action),
    }));
    for (const [i, card] of cards.entries()) {
      const dl = p.deadline(active[i]);
      if (active[i].status === 'assigned' && dl != null) card.dataset.deadline = String(dl);
    }
    replaceChildren(byId('order-slot'), cards.length ? cards[0] : p.loaded ? noOrderView() : loadingView());
    const rest = cards.slice(1);
    replaceChildren(byId('next-slot'), rest.length ? [h('h2', { class: 'drv-h2' }, t('drv.next')), ...rest] : []);
    if (active[0]) {
      this.minimap.show(active[0], state);
      this.minimap.refresh();
      this.startMap();
    }
    this.renderTrips(trips);
    this.renderBanner();
  }

  renderCar(current = this.page.view().active[0]) {
    const p = this.page;
    if (!p.alive || !p.isDriver) return;
    const car = p.vehicle ? { ...p.vehicle, state: p.carState() } : null;
    const check = current && car ? chargeCheck(current, car, car.state) : null;
    replaceChildren(byId('car'), carView(car, check));
  }

  renderTrips(trips = this.page.view().trips) {
    const p = this.page;
    if (!p.alive || !p.isDriver) return;
    replaceChildren(byId('trips'), tripsView(trips, p.monthCount));
  }

  /** Creates the small map once the first render is done and a card shows it. */
  startMap() {
    if (this.page.firstRendered && this.minimap.el.isConnected) this.minimap.start();
  }

  /** The distance to the pickup, updated in place as the car moves. */
  updateDistance() {
    const card = document.getElementById('current-order');
    const el = card?.querySelector('.drv-distance');
    const order = card && this.page.orders.get(card.dataset.orderId);
    const s = this.page.carState();
    if (el && order && s && Number.isFinite(s.lat)) el.textContent = t('drv.distance', { km: formatUnit('unit.km', roadKm(s, order.pickup), 1) });
    if (order) this.minimap.show(order, s);
  }

  setPending(n) {
    const el = byId('pending-taps');
    el.dataset.count = String(n);
    el.textContent = t('drv.pending.count', { n });
    el.hidden = n === 0;
  }

  /** The live feed's state in the header. */
  showConn(state) {
    this.connState = state;
    const el = byId('conn-status');
    el.dataset.state = state;
    byId('conn-label').textContent = t(`drv.conn.${state}`);
    el.title = t(`conn.${state}`);
    this.renderBanner();
  }

  renderBanner() {
    const el = byId('net-banner');
    const offline = navigator.onLine === false;
    const stale = this.page.stale;
    let text = '';
    if (offline || (this.connState !== 'open' && stale)) text = t('drv.offline');
    if (stale) text += (text ? ' ' : '') + t('drv.cached', { time: formatTime(stale) });
    el.textContent = text;
    el.hidden = !text;
  }

  /** Every second: the countdowns. Returns the `{id, deadline}` of every card counting down. */
  tick() {
    const counting = [];
    for (const card of document.querySelectorAll('.drv-order[data-deadline]')) {
      const dl = Number(card.dataset.deadline);
      const s = secondsLeft(dl);
      const el = card.querySelector('.drv-countdown');
      if (el && el.dataset.seconds !== String(s)) {
        setCountdown(el, s);
        if (s === 0) this.render(); // the buttons go grey
      }
      counting.push({ id: card.dataset.orderId, deadline: dl });
    }
    return counting;
  }

  /** Empties what the session showed (at its end). */
  clear() {
    for (const id of ['car', 'order-slot', 'next-slot', 'trips']) replaceChildren(byId(id));
    byId('net-banner').hidden = true;
    byId('sound-hint').hidden = true;
    this.setPending(0);
  }
}
