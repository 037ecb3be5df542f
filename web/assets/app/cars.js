// Car markers: one Leaflet marker per car with a position, coloured by status, an arrow for
// the heading while moving, and a state-of-charge badge; clustered at low zoom. Each icon's
// root element is `<div class="car-marker" data-vin data-status>` for tests and styling.

/* global L */

import { escapeHtml } from '../lib/dom.js';
import { toDisplay, hasPosition } from '../lib/coords.js';

export const STATUSES = ['offline', 'idle', 'assigned', 'on_trip', 'charging', 'maintenance'];
export const STATUS_COLORS = {
  offline: '#8a9099',
  idle: '#2f9e44',
  assigned: '#e8a317',
  on_trip: '#1c6dd0',
  charging: '#8346c8',
  maintenance: '#8e1b1b',
};
const UNKNOWN_COLOR = '#5c6470';
/** Below this speed a car counts as standing: its heading is noise, so no arrow. */
const MOVING_KMH = 2;
/** From this zoom on, plates are written under the markers. */
export const LABEL_ZOOM = 15;

export function statusColor(status) {
  return STATUS_COLORS[status] ?? UNKNOWN_COLOR;
}

/** A DivIcon whose root element carries the car's VIN and status. */
const CarIcon = L.DivIcon.extend({
  createIcon(oldIcon) {
    const div = L.DivIcon.prototype.createIcon.call(this, oldIcon);
    div.dataset.vin = this.options.vin;
    div.dataset.status = this.options.status;
    if (this.options.selected) div.classList.add('selected');
    if (this.options.alarm) div.classList.add('alarm');
    return div;
  },
});

function iconKey(car, lowSoc, selected) {
  const moving = isMoving(car);
  return [
    car.status,
    moving ? Math.round(car.heading_deg / 5) : '-',
    car.soc_pct == null ? '' : Math.round(car.soc_pct),
    isLowSoc(car, lowSoc),
    selected,
    car.plate,
  ].join('|');
}

export function isMoving(car) {
  return Number.isFinite(car.speed_kmh) && car.speed_kmh >= MOVING_KMH && Number.isFinite(car.heading_deg);
}

export function isLowSoc(car, lowSoc) {
  return Number.isFinite(car.soc_pct) && car.soc_pct < lowSoc;
}

/** The marker's inner markup: only numbers, fixed colours and the escaped plate. */
function iconHtml(car, lowSoc) {
  const color = statusColor(car.status);
  let glyph;
  if (isMoving(car)) {
    const deg = Math.round(car.heading_deg);
    glyph = `<path d="M14 5.5 L19.5 19.5 L14 16.2 L8.5 19.5 Z" fill="#fff" transform="rotate(${deg} 14 14)"/>`;
  } else if (car.status === 'charging') {
    glyph = '<path d="M15.2 6.5 L9.5 15 H13.4 L12.6 21.5 L18.5 12.8 H14.6 Z" fill="#fff"/>';
  } else {
    glyph = '<circle cx="14" cy="14" r="3.6" fill="#fff"/>';
  }
  const svg = `<svg class="car-glyph" viewBox="0 0 28 28" width="28" height="28" aria-hidden="true">`
    + `<circle cx="14" cy="14" r="11" fill="${color}" stroke="#fff" stroke-width="2.2"/>${glyph}</svg>`;
  let badge = '';
  if (Number.isFinite(car.soc_pct)) {
    const low = isLowSoc(car, lowSoc) ? ' low' : '';
    badge = `<span class="soc-badge${low}">${Math.round(car.soc_pct)}%</span>`;
  }
  return `${svg}${badge}<span class="car-label">${escapeHtml(car.plate ?? '')}</span>`;
}

function makeIcon(car, lowSoc, selected, alarm) {
  return new CarIcon({
    className: 'car-marker',
    html: iconHtml(car, lowSoc),
    iconSize: [28, 28],
    iconAnchor: [14, 14],
    vin: car.vin,
    status: car.status ?? 'unknown',
    selected,
    alarm,
  });
}

function clusterIcon(cluster) {
  const children = cluster.getAllChildMarkers();
  const n = children.length;
  const alarm = children.some((m) => m.options.alarm);
  const size = n < 10 ? 34 : n < 50 ? 40 : 46;
  return L.divIcon({
    html: `<span>${n}</span>`,
    className: `car-cluster${alarm ? ' has-alarm' : ''}`,
    iconSize: [size, size],
  });
}

export class CarLayer {
  /**
   * @param {L.Map} map
   * @param {(vin: string) => void} onSelect  a marker was clicked
   */
  constructor(map, onSelect) {
    this.map = map;
    this.onSelect = onSelect;
    this.lowSoc = 20;
    this.markers = new Map(); // vin → marker (marker.fleet = {wgs: [lat, lon], key})
    this.selected = null;
    this.alarms = new Set();
    this.cluster = L.markerClusterGroup({
      disableClusteringAtZoom: 12,
      maxClusterRadius: 48,
      showCoverageOnHover: false,
      spiderfyOnMaxZoom: false,
      chunkedLoading: true,
      iconCreateFunction: clusterIcon,
    });
    this.cluster.addTo(map);
    const labels = () => map.getContainer().classList.toggle('show-car-labels', map.getZoom() >= LABEL_ZOOM);
    map.on('zoomend', labels);
    labels();
  }

  setLowSoc(pct) {
    this.lowSoc = pct;
  }

  /** The cars with an alarm get a red ring, and their clusters too. */
  setAlarms(vins) {
    const changed = vins.size !== this.alarms.size || [...vins].some((v) => !this.alarms.has(v));
    if (!changed) return;
    this.alarms = vins;
    for (const [vin, marker] of this.markers) this.refreshIcon(vin, marker.fleet.car);
    this.cluster.refreshClusters();
  }

  /** Adds, moves or restyles the car's marker; removes it when the car has no position. */
  upsert(car) {
    const marker = this.markers.get(car.vin);
    if (!hasPosition(car)) {
      if (marker) this.remove(car.vin);
      return;
    }
    if (!marker) {
      this.cluster.addLayer(this.createMarker(car));
      return;
    }
    marker.fleet.car = car;
    if (marker.fleet.wgs[0] !== car.lat || marker.fleet.wgs[1] !== car.lon) {
      marker.fleet.wgs = [car.lat, car.lon];
      marker.setLatLng(toDisplay(car.lat, car.lon));
    }
    this.refreshIcon(car.vin, car);
  }

  refreshIcon(vin, car) {
    const marker = this.markers.get(vin);
    if (!marker) return;
    const selected = this.selected === vin;
    const key = iconKey(car, this.lowSoc, selected) + (this.alarms.has(vin) ? '|a' : '');
    if (key === marker.fleet.key) return;
    marker.fleet.key = key;
    marker.options.alarm = this.alarms.has(vin);
    marker.setIcon(makeIcon(car, this.lowSoc, selected, this.alarms.has(vin)));
    marker.setZIndexOffset(selected ? 1000 : 0);
  }

  remove(vin) {
    const marker = this.markers.get(vin);
    if (!marker) return;
    this.cluster.removeLayer(marker);
    this.markers.delete(vin);
  }

  /** Replaces every marker with these cars (a snapshot). */
  replaceAll(cars) {
    const keep = new Set();
    const fresh = [];
    for (const car of cars) {
      if (!hasPosition(car)) continue;
      keep.add(car.vin);
      if (this.markers.has(car.vin)) this.upsert(car);
      else fresh.push(this.createMarker(car));
    }
    for (const vin of [...this.markers.keys()]) if (!keep.has(vin)) this.remove(vin);
    // New markers in one batch: the cluster group builds its tree once.
    if (fresh.length) this.cluster.addLayers(fresh);
  }

  createMarker(car) {
    const selected = this.selected === car.vin;
    const alarm = this.alarms.has(car.vin);
    const marker = L.marker(toDisplay(car.lat, car.lon), {
      icon: makeIcon(car, this.lowSoc, selected, alarm),
      title: car.plate ?? car.vin,
      alt: car.plate ?? car.vin,
      riseOnHover: true,
      keyboard: true,
      alarm,
    });
    marker.fleet = { wgs: [car.lat, car.lon], key: iconKey(car, this.lowSoc, selected) + (alarm ? '|a' : ''), car };
    marker.on('click', () => this.onSelect(car.vin));
    this.markers.set(car.vin, marker);
    return marker;
  }

  clear() {
    this.cluster.clearLayers();
    this.markers.clear();
    this.selected = null;
  }

  /** Redraws every marker after the base layer's coordinate system changed. */
  reproject() {
    for (const marker of this.markers.values()) marker.setLatLng(toDisplay(...marker.fleet.wgs));
  }

  select(vin) {
    const previous = this.selected;
    this.selected = vin;
    for (const v of [previous, vin]) {
      const m = v && this.markers.get(v);
      if (m) this.refreshIcon(v, m.fleet.car);
    }
  }

  /** The car's marker position in WGS-84, or null when it has no marker. */
  position(vin) {
    const m = this.markers.get(vin);
    return m ? [...m.fleet.wgs] : null;
  }

  /**
   * Pans and zooms so the car's marker shows outside any cluster, centred in the part of
   * the map that `cover` ({left, bottom} pixels, e.g. the details card) leaves visible.
   */
  focus(vin, cover = { left: 0, bottom: 0 }, minZoom = 14) {
    const m = this.markers.get(vin);
    if (!m) return false;
    const zoom = Math.min(Math.max(this.map.getZoom(), minZoom), this.map.getMaxZoom());
    const point = this.map.project(m.getLatLng(), zoom).subtract(L.point(cover.left / 2, -cover.bottom / 2));
    this.map.setView(this.map.unproject(point, zoom), zoom, { animate: true });
    return true;
  }
}
