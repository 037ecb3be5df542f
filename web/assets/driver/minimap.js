// The small map of an order's pickup and drop-off (and the car), on the offline land layer.
// Leaflet (150 KB) and the land outline (60 KB) are not needed for the first look at an
// order, so they load after the page has rendered; until then the card shows an empty box.

/* global L */

import { h } from '../lib/dom.js';
import { t } from '../lib/i18n.js';

const LEAFLET = '/vendor/leaflet@1.9.4/';

let loading = null;

function loadScript(src) {
  return new Promise((resolve, reject) => {
    const s = h('script', { src });
    s.onload = resolve;
    s.onerror = () => reject(new Error(`${src} did not load`));
    document.head.append(s);
  });
}

/** Loads Leaflet and the base-map module once; resolves to the BaseMap class. */
function loadLeaflet() {
  loading ??= (async () => {
    document.head.append(h('link', { rel: 'stylesheet', href: `${LEAFLET}leaflet.css` }));
    if (!window.L) await loadScript(`${LEAFLET}leaflet.js`);
    const { BaseMap } = await import('../lib/basemap.js');
    return BaseMap;
  })();
  loading.catch(() => {
    loading = null; // offline on a first visit: try again next time
  });
  return loading;
}

function pin(cls, label) {
  return L.divIcon({ className: '', html: h('span', { class: `drv-pin ${cls}` }, h('span', null, label)), iconSize: [28, 28], iconAnchor: [14, 28] });
}

export class MiniMap {
  constructor() {
    /** The map's box: moved into whichever card shows the current order. */
    this.el = h('div', { class: 'drv-map', 'aria-hidden': 'true' });
    this.map = null;
    this.layer = null;
    this.wanted = null; // {order, car} to draw once the map exists
  }

  /** Draws `order`'s pickup and drop-off, and the car's position `car` when known. */
  show(order, car) {
    this.wanted = { order, car };
    if (this.map) this.draw();
  }

  /** Creates the map (lazily: after the first render). */
  async start() {
    if (this.map) return;
    let BaseMap;
    try {
      BaseMap = await loadLeaflet();
    } catch {
      return; // offline on a first visit: the card still has the place names
    }
    if (this.map || !this.el.isConnected) return;
    const base = new BaseMap(this.el);
    this.map = base.map;
    // A small map inside a scrolling page: a finger drag scrolls the page, not the map.
    this.map.dragging.disable();
    this.map.scrollWheelZoom.disable();
    this.map.tap?.disable();
    this.layer = L.layerGroup().addTo(this.map);
    this.draw();
  }

  /** The box was moved or resized. */
  refresh() {
    if (!this.map) return;
    this.map.invalidateSize(false);
    this.draw();
  }

  draw() {
    if (!this.map || !this.wanted) return;
    const { order, car } = this.wanted;
    this.layer.clearLayers();
    const points = [];
    const add = (p, icon) => {
      if (!p || !Number.isFinite(p.lat) || !Number.isFinite(p.lon)) return;
      L.marker([p.lat, p.lon], { icon, interactive: false, keyboard: false }).addTo(this.layer);
      points.push([p.lat, p.lon]);
    };
    add(order.pickup, pin('drv-pin-pickup', t('drv.pin.pickup')));
    add(order.dropoff, pin('drv-pin-dropoff', t('drv.pin.dropoff')));
    if (points.length === 2) L.polyline(points, { color: '#1c6dd0', weight: 2, dashArray: '6 6', interactive: false }).addTo(this.layer);
    if (car && Number.isFinite(car.lat) && Number.isFinite(car.lon)) {
      L.circleMarker([car.lat, car.lon], { radius: 7, color: '#fff', weight: 2, fillColor: '#2f9e44', fillOpacity: 1, interactive: false }).addTo(this.layer);
      points.push([car.lat, car.lon]);
    }
    if (points.length) this.map.fitBounds(points, { padding: [26, 26], maxZoom: 15, animate: false });
  }
}
