// The driver's taps, never lost: every action (accept, decline, pickup, complete) is first
// written to localStorage with an Idempotency-Key made once for that tap, then sent; sending
// goes in tap order and stops at the first tap the network does not take, to go on when the
// connection returns (the `online` event, a periodic retry, or the live feed reconnecting).
// Because the key travels with the tap, a tap that reached the server but whose answer was
// lost is answered again, not done twice. The queue survives a reload and belongs to the
// user who tapped (an Idempotency-Key is per user on the server).

import { api, ApiError } from '../lib/api.js';

const KEY_PREFIX = 'fleet.driver.queue.';
/** While taps wait, sending is retried this often (besides the `online` event). */
export const RETRY_MS = 5000;
/** A send that has not answered by then is given up and retried later (a patchy network
 *  can hold a request for minutes); the retry carries the same key, so it is harmless. */
export const SEND_TIMEOUT_MS = 15000;
/** Failures worth another try (the network, a timeout, an overloaded or failing server): the
 *  tap is kept. */
const RETRYABLE = (e) => !(e instanceof ApiError) || e.status === 0 || e.status === 408 || e.status === 429 || e.status >= 500;

/** A random UUID v4; `crypto.randomUUID` exists only on secure origins. */
export function uuid() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export class TapQueue {
  /**
   * @param {object} o
   * @param {number|string} o.userId  whose taps these are
   * @param {(tap, order) => void} o.onDone  the server took the tap; `order` is its answer
   * @param {(tap, error) => void} o.onDropped  the server refused it for good (409 after the
   *   order moved on, 404, 403, 422): it is removed
   * @param {() => void} o.onChange  the list of waiting taps changed
   */
  constructor({ userId, onDone, onDropped, onChange }) {
    this.key = KEY_PREFIX + userId;
    this.onDone = onDone;
    this.onDropped = onDropped;
    this.onChange = onChange;
    this.sending = false;
    this.timer = null;
    this.stopped = false;
    this.onOnline = () => this.flush();
    // Another tab of the same driver changed the queue.
    this.onStorage = (ev) => {
      if (ev.key === this.key) this.onChange();
    };
  }

  start() {
    window.addEventListener('online', this.onOnline);
    window.addEventListener('storage', this.onStorage);
    this.timer = setInterval(() => {
      if (this.list().length) this.flush();
    }, RETRY_MS);
    this.flush();
  }

  stop() {
    this.stopped = true;
    window.removeEventListener('online', this.onOnline);
    window.removeEventListener('storage', this.onStorage);
    clearInterval(this.timer);
  }

  /** The waiting taps, oldest first: `{key, order_id, action, reason, at}`. */
  list() {
    try {
      const v = JSON.parse(localStorage.getItem(this.key) ?? '[]');
      return Array.isArray(v) ? v : [];
    } catch {
      return [];
    }
  }

  save(list) {
    try {
      if (list.length) localStorage.setItem(this.key, JSON.stringify(list));
      else localStorage.removeItem(this.key);
    } catch {
      /* storage full or blocked: the tap still goes out if the network is there */
    }
    this.onChange();
  }

  /** Records a tap and tries to send it; answers the tap. */
  add(orderId, action, reason) {
    const tap = { key: uuid(), order_id: orderId, action, reason: reason ?? null, at: new Date().toISOString() };
    this.save([...this.list(), tap]);
    this.flush();
    return tap;
  }

  remove(key) {
    this.save(this.list().filter((t) => t.key !== key));
  }

  /** Sends the waiting taps in order until one does not go through. */
  async flush() {
    if (this.sending || this.stopped) return;
    if (navigator.onLine === false) return; // the browser knows: do not even try
    this.sending = true;
    try {
      for (;;) {
        const tap = this.list()[0];
        if (!tap || this.stopped) break;
        let order;
        try {
          order = await api(`/orders/${encodeURIComponent(tap.order_id)}/${tap.action}`, {
            method: 'POST',
            body: tap.reason ? { reason: tap.reason } : {},
            headers: { 'Idempotency-Key': tap.key },
            signal: AbortSignal.timeout?.(SEND_TIMEOUT_MS),
          });
        } catch (e) {
          if (RETRYABLE(e)) break; // kept; the next try starts with it again
          if (e instanceof ApiError && e.status === 401) break; // signed out; kept for the next sign-in
          this.remove(tap.key);
          this.onDropped(tap, e);
          continue;
        }
        this.remove(tap.key);
        this.onDone(tap, order);
      }
    } finally {
      this.sending = false;
    }
  }
}
