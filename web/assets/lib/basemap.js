// The map itself: Leaflet centred on Zhoushan over a sea-coloured background, the offline
// land layer (works with no network at all), and optional tile layers from the server's map
// configuration with a switcher. Tells listeners when the base layer's coordinate system
// changes so markers can be redrawn.

/* global L */

import { escapeHtml } from './dom.js';
import { setDisplayCrs } from './coords.js';
import { t, onLangChange } from './i18n.js';

export const CENTER = [30.0, 122.2];
export const ZOOM = 10;
const LAND_URL = '/map/zhoushan-land.geojson';
const LAND_MAX_ZOOM = 16;
const OSM_CREDIT = '© OpenStreetMap contributors';
const BASE_KEY = 'fleet.map.base';

const LAND_STYLE = {
  color: '#b7ab8e',
  weight: 1,
  opacity: 1,
  fillColor: '#f3efe4',
  fillOpacity: 1,
};

export class BaseMap {
  constructor(element) {
    this.map = L.map(element, {
      center: CENTER,
      zoom: ZOOM,
      minZoom: 7,
      maxZoom: LAND_MAX_ZOOM,
      zoomControl: false,
      attributionControl: true,
    });
    this.map.attributionControl.setPrefix('<a href="https://leafletjs.com" rel="noopener noreferrer">Leaflet</a>');
    L.control.zoom({ position: 'topright' }).addTo(this.map);
    L.control.scale({ position: 'bottomright', imperial: false }).addTo(this.map);

    this.crsListeners = new Set();
    this.overlays = []; // [{key, layer}]
    this.tiles = [];
    this.control = null;

    // A pane under the overlay pane: tracks and alarms always draw above the land.
    this.map.createPane('land').style.zIndex = 300;
    this.land = L.geoJSON(null, {
      pane: 'land',
      style: LAND_STYLE,
      interactive: false,
      attribution: OSM_CREDIT,
    });
    this.land.fleetCrs = 'wgs84';
    this.land.fleetMaxZoom = LAND_MAX_ZOOM;
    this.base = this.land;
    this.land.addTo(this.map);
    this.landLoaded = this.loadLand();

    this.map.on('baselayerchange', (e) => this.onBaseChange(e.layer));
    onLangChange(() => this.rebuildControl());
    this.rebuildControl();
  }

  async loadLand() {
    try {
      const res = await fetch(LAND_URL, { cache: 'no-cache' });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      this.land.addData(await res.json());
    } catch (e) {
      // The sea colour alone still shows where the cars are; nothing else depends on it.
      console.warn('offline land map not loaded', e);
    }
  }

  /** Registers `fn(crs)` for base-layer coordinate system changes. */
  onCrsChange(fn) {
    this.crsListeners.add(fn);
  }

  /** Adds a toggleable overlay to the layer switcher, labelled by message key. */
  addOverlay(key, layer) {
    this.overlays.push({ key, layer });
    this.rebuildControl();
  }

  /** Tile layers from `GET /api/v1/map/config` (`tiles`); an empty list = land only. */
  setTiles(configs) {
    for (const { layer } of this.tiles) {
      if (this.map.hasLayer(layer)) this.map.removeLayer(layer);
    }
    this.tiles = (configs ?? []).filter((c) => c && typeof c.url === 'string').map((c) => {
      const layer = L.tileLayer(c.url, {
        subdomains: c.subdomains || 'abc',
        maxZoom: Number.isFinite(c.max_zoom) ? c.max_zoom : 18,
        maxNativeZoom: Number.isFinite(c.max_zoom) ? c.max_zoom : 18,
        // The control renders attribution as markup: the configured text is shown as text.
        attribution: c.attribution ? escapeHtml(c.attribution) : '',
        crossOrigin: false,
      });
      layer.fleetCrs = c.crs === 'gcj02' ? 'gcj02' : 'wgs84';
      layer.fleetMaxZoom = Number.isFinite(c.max_zoom) ? c.max_zoom : 18;
      return { name: String(c.name ?? c.url), layer };
    });
    const wanted = safeGet(BASE_KEY);
    const chosen = this.tiles.find((x) => x.name === wanted);
    if (chosen && this.base !== chosen.layer) this.switchBase(chosen.layer);
    else if (!chosen && this.base !== this.land) this.switchBase(this.land);
    this.rebuildControl();
  }

  switchBase(layer) {
    if (this.map.hasLayer(this.base)) this.map.removeLayer(this.base);
    layer.addTo(this.map);
    this.onBaseChange(layer);
  }

  onBaseChange(layer) {
    this.base = layer;
    const entry = this.tiles.find((x) => x.layer === layer);
    safeSet(BASE_KEY, entry ? entry.name : '');
    this.map.setMaxZoom(layer.fleetMaxZoom ?? LAND_MAX_ZOOM);
    setDisplayCrs(layer.fleetCrs);
    for (const fn of this.crsListeners) fn(layer.fleetCrs);
  }

  rebuildControl() {
    if (this.control) this.control.remove();
    const bases = {};
    if (this.tiles.length) {
      bases[escapeHtml(t('layer.land'))] = this.land;
      for (const { name, layer } of this.tiles) bases[escapeHtml(name)] = layer;
    }
    const overlays = {};
    for (const { key, layer } of this.overlays) overlays[escapeHtml(t(key))] = layer;
    if (!this.tiles.length && !this.overlays.length) {
      this.control = null;
      return;
    }
    this.control = L.control.layers(bases, overlays, { position: 'topright', collapsed: true }).addTo(this.map);
  }
}

function safeGet(key) {
  try {
    return localStorage.getItem(key);
  } catch {
    return null;
  }
}

function safeSet(key, value) {
  try {
    localStorage.setItem(key, value);
  } catch {
    /* not remembered */
  }
}
