// The dispatcher's live map page (`/`): signs in, draws the fleet on the map and keeps it
// live from the WebSocket feed, with vehicle, order and alarm lists beside it; orders are
// approved, assigned and canceled from their details card. This module boots the page and
// keeps the hooks the browser tests read; `ui.js` makes the map and panels once, `page.js`
// is one signed-in session.

import { bootPage } from '../lib/shell.js';
import { Page } from './page.js';
import { buildUi } from './ui.js';

let page = null; // the signed-in session; null while the login view shows
let ui = null; // the map and panels, made once (at the first sign-in) and kept across sessions

window.__fleet = {
  /** True once the first live snapshot has been rendered. */
  get ready() {
    return page?.ready ?? false;
  },
  /** The car's marker position `[lat, lon]` in WGS-84, or null when it has none. */
  markerPosition: (vin) => page?.cars.position(vin) ?? null,
  /** How many cars the page knows (with or without a position). */
  carCount: () => page?.state.size ?? 0,
  /** Opens the car's details (as a click on its row would). */
  openVehicle: (vin) => page?.pick(vin) ?? Promise.resolve(),
  /** Opens an order's details (as a click on its row would). */
  openOrder: (id) => page?.openOrder(id) ?? Promise.resolve(),
  /** The open order's pins in WGS-84 `{pickup: [lat, lon], dropoff: [lat, lon]}`, or null. */
  orderPins: () => ui?.orderDetail.pinPositions() ?? null,
};

bootPage({
  views: ['app-view', 'user-box'],
  start(user) {
    if (!ui) ui = buildUi(() => page);
    else ui.base.map.invalidateSize();
    page = new Page(ui, user);
    page.start();
    return page;
  },
  stop() {
    page = null;
  },
});
