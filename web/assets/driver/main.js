// The driver's page (`/driver`): signs in, shows the driver's car and current assignments,
// takes taps (accept, decline with a reason, picked up, completed) through the offline tap
// queue, and keeps live from the WebSocket feed: a new assignment appears with a beep, a
// vibration and its accept countdown, without polling. Works from the service worker's cache
// when the phone is offline, showing the last data it had.

import { bootPage } from '../lib/shell.js';
import { Page } from './page.js';

const SW_URL = '/driver-sw.js';
const SW_SCOPE = '/driver';

let page = null;

const hooks = {
  /** True once the first load (from the server, or from the offline cache) is on screen. */
  ready: false,
  /** Milliseconds from navigation start to that first render. */
  readyMs: null,
  /** The taps waiting to be sent. */
  pending: () => page?.queue.list().length ?? 0,
};
window.__driver = hooks;

function markReady() {
  if (hooks.ready) return;
  hooks.ready = true;
  hooks.readyMs = Math.round(performance.now());
  performance.mark?.('driver-ready');
}

bootPage({
  views: ['app-view', 'logout', 'conn-status'],
  start(user) {
    hooks.ready = false;
    page = new Page(user, { onReady: markReady });
    page.start();
    return page;
  },
  stop() {
    page = null;
    hooks.ready = false;
  },
  relabel: () => page?.relabel(),
});

if ('serviceWorker' in navigator) {
  // After the first render: installing fetches the page's files once more.
  window.addEventListener('load', () => {
    navigator.serviceWorker.register(SW_URL, { scope: SW_SCOPE }).catch((e) => console.warn('service worker not registered', e));
  });
}
