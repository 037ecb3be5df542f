// Short messages at the top of the driver's page (a new job, a job gone, a tap refused):
// one at a time, gone after a while or at a tap, relabelled when the language changes.

import { byId } from '../lib/dom.js';
import { t } from '../lib/i18n.js';

/** How long a notice stays up. */
const NOTICE_MS = 6000;

let noticeTimer = null;
let noticeText = null; // [key, vars] of the notice on screen, to relabel it

/** Shows a short message (dictionary `key` with `vars`) at the top of the screen. */
export function notice(key, vars) {
  const el = byId('notice');
  noticeText = [key, vars];
  el.textContent = t(key, vars);
  el.hidden = false;
  el.onclick = () => {
    el.hidden = true;
    noticeText = null;
  };
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => {
    el.hidden = true;
    noticeText = null;
  }, NOTICE_MS);
}

/** Hides the notice if it is the message `key`. */
export function dismissNotice(key) {
  if (noticeText?.[0] !== key) return;
  byId('notice').hidden = true;
  noticeText = null;
}

/** Shows the notice on screen in the current language. */
export function relabelNotice() {
  if (noticeText) byId('notice').textContent = t(...noticeText);
}
