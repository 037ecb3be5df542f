// The driver's page (`/driver`): signs in, shows the driver's car and current assignments,
// takes taps (accept, decline with a reason, picked up, completed) through the offline tap
// queue, and keeps live from the WebSocket feed: a new assignment appears with a beep, a
// vibration and its accept countdown, without polling. Works from the service worker's cache
// when the phone is offline, showing the last data it had.

import { getToken, getUser, logout, mountLogin, onSessionChange } from '../app/auth.js';
import { byId } from '../app/dom.js';
import { applyStatic, toggleLang, onLangChange } from '../app/i18n.js';
import { Page } from './page.js';

const SW_URL = '/driver-sw.js';
const SW_SCOPE = '/driver';

const hooks = {
  /** True once the first load (from the server, or from the offline cache) is on screen. */
  ready: false,
  /** Milliseconds from navigation start to that first render. */
  readyMs: null,
  /** The taps waiting to be sent. */
  pending: () => page?.queue.list().length ?? 0,
};
window.__driver = hooks;

let page = null;
let unmountLogin = null;

function boot() {
  applyStatic(document);
  byId('lang-switch').addEventListener('click', toggleLang);
  byId('logout').addEventListener('click', () => logout());
  onLangChange(() => page?.relabel());
  onSessionChange((ev) => (ev.signedIn ? startPage() : stopPage(ev.reason)));
  if (getToken()) startPage();
  else showLogin();
  if ('serviceWorker' in navigator) {
    // After the first render: installing fetches the page's files once more.
    window.addEventListener('load', () => {
      navigator.serviceWorker.register(SW_URL, { scope: SW_SCOPE }).catch((e) => console.warn('service worker not registered', e));
    });
  }
}

function showLogin(notice) {
  byId('app-view').hidden = true;
  byId('logout').hidden = true;
  byId('conn-status').hidden = true;
  const view = byId('login-view');
  view.hidden = false;
  unmountLogin?.();
  unmountLogin = mountLogin(view, { notice });
}

function startPage() {
  if (page) return;
  unmountLogin?.();
  unmountLogin = null;
  byId('login-view').hidden = true;
  byId('app-view').hidden = false;
  byId('logout').hidden = false;
  byId('conn-status').hidden = false;
  hooks.ready = false;
  page = new Page(getUser() ?? {}, { onReady: markReady });
  page.start();
}

function stopPage(reason) {
  page?.stop();
  page = null;
  hooks.ready = false;
  showLogin(reason === 'expired' ? 'session.expired' : undefined);
}

function markReady() {
  if (hooks.ready) return;
  hooks.ready = true;
  hooks.readyMs = Math.round(performance.now());
  performance.mark?.('driver-ready');
}

boot();
