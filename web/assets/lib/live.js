// The live feed client: one WebSocket to /api/v1/live that reconnects by itself with capped,
// jittered exponential backoff. Every (re)connection starts with a snapshot from the server,
// so the page never has to work out what it missed. The feed also watches the session: a
// close code saying the login no longer holds ends it (the page shell shows the login form),
// and a socket that fails before opening has the server asked whether the token still holds.

import { checkSession, liveUrl } from './api.js';
import { expireSession } from './session.js';

/** First retry after about this long; each failure doubles it up to MAX_DELAY_MS. */
export const MIN_DELAY_MS = 1000;
export const MAX_DELAY_MS = 30000;
/** Close codes by which the server says the login no longer holds (logged out, password
 *  changed, token expired, token revoked): reconnecting would not help. */
const AUTH_CLOSE_CODES = new Set([4001, 4002, 4003, 4004]);

export class LiveFeed {
  /**
   * @param {object} o
   * @param {(msg: object) => void} o.onMessage  every parsed server message
   * @param {(state: 'connecting'|'open'|'closed', retryAt: number|null) => void} o.onState
   * @param {object} [o.params]  extra query parameters (`unit_id`, `bbox`)
   */
  constructor({ onMessage, onState, params = {} }) {
    this.onMessage = onMessage;
    this.onState = onState;
    this.params = params;
    this.socket = null;
    this.attempt = 0;
    this.timer = null;
    this.running = false;
    this.state = 'closed';
    this.onOnline = () => {
      if (this.running && this.state === 'closed') this.connectNow();
    };
  }

  start() {
    if (this.running) return;
    this.running = true;
    window.addEventListener('online', this.onOnline);
    this.connectNow();
  }

  stop() {
    this.running = false;
    window.removeEventListener('online', this.onOnline);
    clearTimeout(this.timer);
    this.timer = null;
    this.closeSocket();
    this.setState('closed', null);
  }

  /** New query parameters: reconnects at once (the new snapshot replaces everything). */
  setParams(params) {
    this.params = params;
    if (!this.running) return;
    this.attempt = 0;
    this.connectNow();
  }

  connectNow() {
    clearTimeout(this.timer);
    this.timer = null;
    this.closeSocket();
    this.open();
  }

  setState(state, retryAt) {
    this.state = state;
    this.onState(state, retryAt);
  }

  closeSocket() {
    const s = this.socket;
    if (!s) return;
    this.socket = null;
    s.onopen = s.onmessage = s.onclose = s.onerror = null;
    try {
      s.close(1000);
    } catch {
      /* already closing */
    }
  }

  open() {
    this.setState('connecting', null);
    let socket;
    try {
      socket = new WebSocket(liveUrl(this.params));
    } catch {
      this.scheduleRetry(false);
      return;
    }
    this.socket = socket;
    let opened = false;
    socket.onopen = () => {
      opened = true;
      this.setState('open', null);
    };
    socket.onmessage = (ev) => {
      if (typeof ev.data !== 'string') return;
      let msg;
      try {
        msg = JSON.parse(ev.data);
      } catch {
        return; // not ours to interpret
      }
      // A snapshot means the server has us fully in sync: the connection is healthy.
      if (msg?.type === 'snapshot') this.attempt = 0;
      this.onMessage(msg);
    };
    socket.onclose = (ev) => {
      if (this.socket !== socket) return;
      this.socket = null;
      if (AUTH_CLOSE_CODES.has(ev.code)) {
        // No retry: the page goes back to the login form.
        this.setState('closed', null);
        expireSession();
        return;
      }
      this.scheduleRetry(opened);
    };
    // An error is always followed by close; the retry is scheduled there.
    socket.onerror = () => {};
  }

  scheduleRetry(opened) {
    if (!this.running) return;
    const base = Math.min(MAX_DELAY_MS, MIN_DELAY_MS * 2 ** this.attempt);
    this.attempt = Math.min(this.attempt + 1, 16);
    // Jitter in [base/2, base]: many pages dropped by one server restart do not return at once.
    const delay = base / 2 + Math.random() * (base / 2);
    const retryAt = Date.now() + delay;
    this.setState('closed', retryAt);
    this.timer = setTimeout(() => {
      this.timer = null;
      if (this.running) this.open();
    }, delay);
    // A socket refused before it opened may mean the token is gone.
    if (!opened) checkSession();
  }
}
