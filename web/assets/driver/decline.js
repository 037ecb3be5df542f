// The decline sheet: a reason is required (dispatch records it and the car is excluded from
// the order), chosen from presets with one tap, with an optional note; "other" needs the note.
// The reason is sent in the words the driver saw.

import { byId, h, replaceChildren } from '../lib/dom.js';
import { t } from '../lib/i18n.js';

/** Preset reasons: the dictionary key of each. */
export const PRESETS = ['fault', 'charging', 'unwell', 'other'];

export class DeclineSheet {
  /** @param {(orderId: string, reason: string) => void} onConfirm */
  constructor(onConfirm) {
    this.onConfirm = onConfirm;
    this.el = byId('decline-sheet');
    this.orderId = null;
    this.preset = null;
    this.text = h('textarea', { id: 'decline-reason', rows: 2, maxlength: 200, class: 'drv-textarea' });
    this.error = h('p', { id: 'decline-error', class: 'drv-error', role: 'alert', hidden: true });
    this.text.addEventListener('input', () => {
      this.error.hidden = true;
    });
    this.el.addEventListener('click', (ev) => {
      if (ev.target === this.el) this.close(); // the dimmed backdrop
    });
    this.errorKey = null;
  }

  get openFor() {
    return this.orderId;
  }

  open(orderId) {
    this.orderId = orderId;
    this.preset = null;
    this.text.value = '';
    this.errorKey = null;
    this.render();
    this.el.hidden = false;
    this.el.querySelector('.drv-chip')?.focus();
  }

  close() {
    this.orderId = null;
    this.el.hidden = true;
  }

  render() {
    const chips = PRESETS.map((p) => h('button', {
      type: 'button',
      class: 'drv-chip',
      dataset: { reason: p },
      'aria-pressed': String(this.preset === p),
      onclick: () => {
        this.preset = p;
        this.errorKey = null;
        this.render();
        if (p === 'other') this.text.focus();
      },
    }, t(`drv.decline.${p}`)));
    this.text.placeholder = t(this.preset === 'other' ? 'drv.decline.placeholder.required' : 'drv.decline.placeholder');
    this.error.textContent = this.errorKey ? t(this.errorKey) : '';
    this.error.hidden = !this.errorKey;
    const card = h('div', { class: 'drv-sheet-card', role: 'dialog', 'aria-modal': 'true', 'aria-labelledby': 'decline-title' },
      h('h2', { id: 'decline-title' }, t('drv.decline.title')),
      h('div', { class: 'drv-chips', role: 'group' }, chips),
      h('label', { for: 'decline-reason', class: 'drv-label' }, t('drv.decline.text')),
      this.text,
      this.error,
      h('div', { class: 'drv-actions' },
        h('button', { type: 'button', id: 'decline-cancel', class: 'drv-btn drv-btn-ghost', onclick: () => this.close() }, t('drv.decline.cancel')),
        h('button', { type: 'button', id: 'decline-confirm', class: 'drv-btn drv-btn-danger drv-btn-grow', onclick: () => this.confirm() }, t('drv.decline.confirm'))));
    replaceChildren(this.el, card);
  }

  confirm() {
    const note = this.text.value.trim();
    let reason;
    if (this.preset && this.preset !== 'other') reason = note ? `${t(`drv.decline.${this.preset}`)}${t('colon')}${note}` : t(`drv.decline.${this.preset}`);
    else reason = note;
    if (!reason) {
      this.errorKey = this.preset === 'other' ? 'drv.decline.missing.other' : 'drv.decline.missing';
      this.render();
      this.text.focus();
      return;
    }
    const id = this.orderId;
    this.close();
    this.onConfirm(id, reason);
  }
}
