// Charging stations (`GET /api/v1/charging-stations`) as small markers in their own layer.

/* global L */

import { h } from '../lib/dom.js';
import { t, formatNumber } from '../lib/i18n.js';
import { toDisplay, hasPosition } from '../lib/coords.js';

const ICON_HTML = '<svg viewBox="0 0 18 18" width="18" height="18" aria-hidden="true">'
  + '<rect x="1" y="1" width="16" height="16" rx="4" fill="#0b7285" stroke="#fff" stroke-width="1.6"/>'
  + '<path d="M10 3.5 L5.5 10 H8.6 L7.9 14.5 L12.5 8 H9.4 Z" fill="#fff"/></svg>';

export class StationLayer {
  constructor() {
    this.layer = L.layerGroup();
    this.stations = [];
  }

  set(stations) {
    this.stations = (stations ?? []).filter(hasPosition);
    this.draw();
  }

  draw() {
    this.layer.clearLayers();
    const icon = L.divIcon({ className: 'station-marker', html: ICON_HTML, iconSize: [18, 18], iconAnchor: [9, 9] });
    for (const s of this.stations) {
      const marker = L.marker(toDisplay(s.lat, s.lon), { icon, keyboard: false, zIndexOffset: -500 });
      // Tooltip content as an element: the station's name is text, never markup.
      marker.bindTooltip(() => h('div', { class: 'station-tip' },
        h('strong', null, s.name ?? s.id),
        Number.isFinite(s.power_kw) ? h('div', null, t('station.power', { kw: formatNumber(s.power_kw) })) : null),
      { direction: 'top', offset: [0, -8] });
      marker.addTo(this.layer);
    }
  }

  /** Redraws after the base layer's coordinate system changed. */
  reproject() {
    this.draw();
  }
}
