// The live feed's state in the dispatcher's header: connecting, live, or the seconds until the
// next try, counted down while the feed waits to reconnect.

import { t } from '../lib/i18n.js';

export class ConnStatus {
  /** `el` carries the state as `data-state`; `label` shows it in words. */
  constructor(el, label) {
    this.el = el;
    this.label = label;
    this.state = null;
    this.retryAt = null;
    this.ticker = null;
  }

  /** The feed's new state; `retryAt` is when it tries again (while closed), or null. */
  show(state, retryAt) {
    this.state = state;
    this.retryAt = retryAt;
    this.el.dataset.state = state;
    clearInterval(this.ticker);
    this.ticker = null;
    this.relabel();
    if (state === 'closed' && retryAt) this.ticker = setInterval(() => this.relabel(), 1000);
  }

  relabel() {
    if (this.state == null) return;
    if (this.state === 'closed' && this.retryAt) {
      const seconds = Math.max(0, Math.ceil((this.retryAt - Date.now()) / 1000));
      this.label.textContent = t('conn.retry', { seconds });
    } else {
      this.label.textContent = t(`conn.${this.state}`);
    }
  }

  stop() {
    clearInterval(this.ticker);
    this.ticker = null;
  }
}
