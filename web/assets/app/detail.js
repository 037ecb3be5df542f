// The vehicle details panel (#vehicle-detail): registry data and current state from
// `GET /api/v1/vehicles/{vin}`, kept current by the live feed, and a track replay of the
// last hours (`GET /api/v1/vehicles/{vin}/track`).

/* global L */

import { api } from '../lib/api.js';
import { byId, h, replaceChildren } from '../lib/dom.js';
import { t, formatDateTime, formatNumber, formatUnit } from '../lib/i18n.js';
import { statusColor } from './cars.js';
import { toDisplay, hasPosition } from '../lib/coords.js';

/** While the panel is open its registry data and odometer are reloaded this often. */
const REFRESH_MS = 15000;
/** Track samples asked for per request; more pages are fetched until MAX_TRACK_SAMPLES. */
const TRACK_PAGE = 20000;
const MAX_TRACK_SAMPLES = 100000;
/** Between two samples further apart than this the replay jumps instead of gliding. */
const GAP_MS = 5 * 60 * 1000;
export const TRACK_HOURS = [1, 3, 6];
export const REPLAY_RATES = [10, 60, 300];
const DEFAULT_RATE = 60;
const DIRS = ['N', 'NE', 'E', 'SE', 'S', 'SW', 'W', 'NW'];

export function compass(deg) {
  if (!Number.isFinite(deg)) return '';
  return t(`dir.${DIRS[Math.round((((deg % 360) + 360) % 360) / 45) % 8]}`);
}

export class VehicleDetail {
  /**
   * @param {object} o
   * @param {L.Map} o.map
   * @param {(vin: string) => object|undefined} o.liveCar  the car's latest live state
   * @param {(unitId: string) => string} o.unitName
   * @param {() => void} o.onClose
   */
  constructor({ map, liveCar, unitName, onClose }) {
    this.map = map;
    this.liveCar = liveCar;
    this.unitName = unitName;
    this.onClose = onClose;
    this.root = byId('vehicle-detail');
    this.vin = null;
    this.vehicle = null; // GET /vehicles/{vin}
    this.error = null;
    this.loadSeq = 0;
    this.refreshTimer = null;
    this.track = null; // {samples, truncated, layers, marker}
    this.trackMessage = null;
    this.replay = { playing: false, t: 0, rate: DEFAULT_RATE, frame: null, last: 0 };
    this.build();
    document.addEventListener('keydown', (ev) => {
      if (ev.key === 'Escape' && this.vin && !ev.defaultPrevented) this.close();
    });
  }

  build() {
    this.plate = h('h2', { id: 'vehicle-detail-plate', class: 'detail-plate' });
    this.status = h('span', { class: 'status-chip' });
    this.closeBtn = h('button', { id: 'vehicle-detail-close', type: 'button', class: 'icon-btn', onclick: () => this.close() }, '×');
    this.fields = h('dl', { class: 'detail-fields' });
    this.message = h('p', { class: 'detail-message', hidden: true });

    this.trackTitle = h('h3', { class: 'detail-section' });
    this.hours = h('select', { id: 'track-hours', class: 'select' });
    this.loadBtn = h('button', { id: 'track-load', type: 'button', class: 'btn', onclick: () => this.loadTrack() });
    this.playBtn = h('button', { id: 'track-play', type: 'button', class: 'btn btn-primary', disabled: true, onclick: () => this.togglePlay() });
    this.slider = h('input', {
      id: 'track-slider', type: 'range', min: '0', max: '1000', step: '1', value: '0', disabled: true, class: 'slider',
    });
    this.slider.addEventListener('input', () => this.seekFraction(Number(this.slider.value) / 1000));
    this.rate = h('select', { id: 'track-rate', class: 'select', disabled: true });
    this.rate.addEventListener('change', () => {
      this.replay.rate = Number(this.rate.value) || DEFAULT_RATE;
    });
    this.clearBtn = h('button', { id: 'track-clear', type: 'button', class: 'btn btn-ghost', disabled: true, onclick: () => this.clearTrack() });
    this.trackInfo = h('p', { id: 'track-info', class: 'track-info' });
    this.readout = h('div', { id: 'track-readout', class: 'track-readout', hidden: true });

    replaceChildren(this.root,
      h('header', { class: 'detail-head' }, h('div', { class: 'detail-title' }, this.plate, this.status), this.closeBtn),
      this.message,
      this.fields,
      h('section', { class: 'detail-track' },
        this.trackTitle,
        h('div', { class: 'track-row' }, this.hours, this.loadBtn, this.clearBtn),
        this.trackInfo,
        h('div', { class: 'track-row' }, this.playBtn, this.slider, this.rate),
        this.readout));
    this.root.hidden = true;
    this.relabel();
  }

  /** Opens the panel for `vin` (or moves it to another car). Resolves when loaded. */
  async open(vin) {
    if (this.vin !== vin) {
      this.clearTrack();
      this.vehicle = null;
      this.error = null;
    }
    this.vin = vin;
    this.root.hidden = false;
    this.render();
    clearInterval(this.refreshTimer);
    this.refreshTimer = setInterval(() => this.load(), REFRESH_MS);
    await this.load();
  }

  /**
   * How much of the map the panel hides: {left} when it sits over the map's left side,
   * {bottom} when it is a bottom sheet (narrow screens), in pixels.
   */
  cover() {
    if (this.root.hidden) return { left: 0, bottom: 0 };
    const panel = this.root.getBoundingClientRect();
    const map = this.map.getContainer().getBoundingClientRect();
    if (panel.width >= map.width * 0.9) return { left: 0, bottom: Math.max(0, map.bottom - panel.top) };
    return { left: Math.max(0, panel.right - map.left), bottom: 0 };
  }

  close() {
    if (!this.vin) return;
    clearInterval(this.refreshTimer);
    this.refreshTimer = null;
    this.clearTrack();
    this.vin = null;
    this.vehicle = null;
    this.root.hidden = true;
    this.onClose();
  }

  async load() {
    const vin = this.vin;
    if (!vin) return;
    const seq = ++this.loadSeq;
    try {
      const vehicle = await api(`/vehicles/${encodeURIComponent(vin)}`);
      if (seq !== this.loadSeq || vin !== this.vin) return;
      this.vehicle = vehicle;
      this.error = null;
    } catch (e) {
      if (seq !== this.loadSeq || vin !== this.vin) return;
      this.error = e;
    }
    this.render();
  }

  /** A live update for the shown car. */
  liveUpdate(car) {
    if (car.vin === this.vin) this.render();
  }

  /** The state to show: the fetched one, with the live feed's fresher values laid over it. */
  currentState() {
    const fetched = this.vehicle?.state ?? null;
    const live = this.liveCar(this.vin);
    if (!live || live.ts == null) return fetched;
    if (fetched && fetched.ts && Date.parse(fetched.ts) > Date.parse(live.ts)) return fetched;
    const merged = { ...(fetched ?? {}) };
    for (const k of ['ts', 'lat', 'lon', 'speed_kmh', 'heading_deg', 'soc_pct', 'status']) {
      if (live[k] !== undefined) merged[k] = live[k];
    }
    return merged;
  }

  render() {
    if (!this.vin) return;
    const v = this.vehicle;
    const live = this.liveCar(this.vin);
    const s = this.currentState();
    const status = s?.status ?? live?.status ?? null;
    this.plate.textContent = v?.plate ?? live?.plate ?? this.vin;
    this.status.hidden = !status;
    if (status) {
      this.status.dataset.status = status;
      this.status.style.setProperty('--c', statusColor(status));
      this.status.textContent = t(`status.${status}`);
    }

    if (this.error) {
      this.message.hidden = false;
      this.message.textContent = t('detail.error', { message: this.error.message });
    } else if (!v) {
      this.message.hidden = false;
      this.message.textContent = t('detail.loading');
    } else if (!s) {
      this.message.hidden = false;
      this.message.textContent = t('detail.no_state');
    } else {
      this.message.hidden = true;
    }

    const none = t('none');
    const heading = Number.isFinite(s?.heading_deg)
      ? `${formatUnit('unit.deg', s.heading_deg)} ${compass(s.heading_deg)}`
      : none;
    const charging = s?.charging == null ? none : t(s.charging ? 'detail.charging.yes' : 'detail.charging.no');
    const unitId = v?.unit_id ?? live?.unit_id;
    const rows = [
      ['detail.vin', this.vin, 'mono'],
      ['detail.model', v?.model ?? none],
      ['detail.seats', v?.seats != null ? t('detail.seats.value', { n: v.seats }) : none],
      ['detail.unit', unitId ? this.unitName(unitId) : t('unit.none')],
      ['detail.soc', formatUnit('unit.pct', s?.soc_pct, 1)],
      ['detail.range', formatUnit('unit.km', s?.range_km)],
      ['detail.speed', formatUnit('unit.kmh', s?.speed_kmh, 1)],
      ['detail.heading', heading],
      ['detail.odometer', formatUnit('unit.km', s?.odometer_km, 1)],
      ['detail.charging', charging],
      ['detail.position', hasPosition(s) ? `${s.lat.toFixed(5)}, ${s.lon.toFixed(5)}` : none, 'mono'],
      ['detail.updated', formatDateTime(s?.ts)],
    ];
    replaceChildren(this.fields, rows.map(([key, value, cls]) => [
      h('dt', null, t(key)),
      h('dd', { class: cls ?? null, dataset: { field: key.slice('detail.'.length) } }, value),
    ]));
  }

  relabel() {
    this.closeBtn.title = t('detail.close');
    this.closeBtn.setAttribute('aria-label', t('detail.close'));
    this.root.setAttribute('aria-label', t('detail.title'));
    this.trackTitle.textContent = t('track.title');
    const hours = this.hours.value || String(TRACK_HOURS[0]);
    replaceChildren(this.hours, TRACK_HOURS.map((n) => h('option', { value: String(n) }, t('track.hours', { n }))));
    this.hours.value = hours;
    this.loadBtn.textContent = t('track.load');
    this.clearBtn.textContent = t('track.clear');
    this.rate.title = t('track.speed');
    const rate = String(this.replay.rate);
    replaceChildren(this.rate, REPLAY_RATES.map((r) => h('option', { value: String(r) }, `×${r}`)));
    this.rate.value = rate;
    this.updatePlayLabel();
    this.renderTrackInfo();
    if (this.track) this.showReplayPoint();
    this.render();
  }

  // ---- track replay ----

  async loadTrack() {
    const vin = this.vin;
    if (!vin) return;
    this.clearTrack();
    const hours = Number(this.hours.value) || TRACK_HOURS[0];
    const to = new Date();
    const from = new Date(to.getTime() - hours * 3600 * 1000);
    this.trackMessage = { key: 'track.loading' };
    this.renderTrackInfo();
    this.loadBtn.disabled = true;
    try {
      const { samples, truncated } = await fetchTrack(vin, from, to);
      if (vin !== this.vin) return;
      const points = samples.filter((s) => s.position_valid !== false && !s.clock_ahead && Number.isFinite(s.lat) && Number.isFinite(s.lon));
      if (points.length === 0) {
        this.trackMessage = { key: 'track.empty' };
        return;
      }
      this.track = {
        samples: points,
        times: points.map((s) => Date.parse(s.ts)),
        truncated,
      };
      this.trackMessage = null;
      this.drawTrack();
      this.replay.t = this.track.times[0];
      this.playBtn.disabled = false;
      this.slider.disabled = false;
      this.rate.disabled = false;
      this.clearBtn.disabled = false;
      this.readout.hidden = false;
      this.showReplayPoint();
      const cover = this.cover();
      this.map.fitBounds(this.track.line.getBounds(), {
        paddingTopLeft: [cover.left + 30, 30],
        paddingBottomRight: [30, cover.bottom + 30],
        maxZoom: 15,
      });
    } catch (e) {
      if (vin === this.vin) this.trackMessage = { key: 'track.error', vars: { message: e.message } };
    } finally {
      this.loadBtn.disabled = false;
      this.renderTrackInfo();
    }
  }

  renderTrackInfo() {
    if (this.trackMessage) {
      this.trackInfo.textContent = t(this.trackMessage.key, this.trackMessage.vars);
    } else if (this.track) {
      const n = this.track.samples.length;
      this.trackInfo.textContent = t('track.points', { n: formatNumber(n) })
        + (this.track.truncated ? t('track.truncated', { n: formatNumber(n) }) : '');
    } else {
      this.trackInfo.textContent = '';
    }
  }

  drawTrack() {
    const latlngs = this.track.samples.map((s) => toDisplay(s.lat, s.lon));
    this.removeTrackLayers();
    this.track.casing = L.polyline(latlngs, { color: '#ffffff', weight: 7, opacity: 0.9, interactive: false }).addTo(this.map);
    this.track.line = L.polyline(latlngs, { color: '#d9480f', weight: 4, opacity: 0.95, interactive: false }).addTo(this.map);
    this.track.start = L.circleMarker(latlngs[0], { radius: 5, color: '#fff', weight: 2, fillColor: '#2f9e44', fillOpacity: 1, interactive: false }).addTo(this.map);
    this.track.end = L.circleMarker(latlngs[latlngs.length - 1], { radius: 5, color: '#fff', weight: 2, fillColor: '#c92a2a', fillOpacity: 1, interactive: false }).addTo(this.map);
    this.track.marker = L.marker(latlngs[0], {
      icon: L.divIcon({
        className: 'replay-marker',
        html: '<svg viewBox="0 0 28 28" width="28" height="28" aria-hidden="true"><circle cx="14" cy="14" r="11" fill="#d9480f" stroke="#fff" stroke-width="2.2"/><path class="replay-arrow" d="M14 5.5 L19.5 19.5 L14 16.2 L8.5 19.5 Z" fill="#fff"/></svg>',
        iconSize: [28, 28],
        iconAnchor: [14, 14],
      }),
      interactive: false,
      keyboard: false,
      zIndexOffset: 2000,
    }).addTo(this.map);
  }

  removeTrackLayers() {
    if (!this.track) return;
    for (const k of ['casing', 'line', 'start', 'end', 'marker']) {
      if (this.track[k]) this.track[k].remove();
      this.track[k] = null;
    }
  }

  /** Redraws the track after the base layer's coordinate system changed. */
  reproject() {
    if (this.track) {
      this.drawTrack();
      this.showReplayPoint();
    }
  }

  clearTrack() {
    this.pause();
    this.removeTrackLayers();
    this.track = null;
    this.trackMessage = null;
    this.playBtn.disabled = true;
    this.slider.disabled = true;
    this.slider.value = '0';
    this.rate.disabled = true;
    this.clearBtn.disabled = true;
    this.readout.hidden = true;
    this.renderTrackInfo();
  }

  togglePlay() {
    if (!this.track) return;
    if (this.replay.playing) this.pause();
    else this.play();
  }

  play() {
    const { times } = this.track;
    if (this.replay.t >= times[times.length - 1]) this.replay.t = times[0];
    this.replay.playing = true;
    this.replay.last = performance.now();
    this.updatePlayLabel();
    const step = (now) => {
      if (!this.replay.playing || !this.track) return;
      const dt = Math.min(now - this.replay.last, 250); // a background tab does not leap ahead
      this.replay.last = now;
      const end = this.track.times[this.track.times.length - 1];
      this.replay.t = Math.min(end, this.replay.t + dt * this.replay.rate);
      this.showReplayPoint();
      if (this.replay.t >= end) {
        this.pause();
        return;
      }
      this.replay.frame = requestAnimationFrame(step);
    };
    this.replay.frame = requestAnimationFrame(step);
  }

  pause() {
    this.replay.playing = false;
    if (this.replay.frame) cancelAnimationFrame(this.replay.frame);
    this.replay.frame = null;
    this.updatePlayLabel();
  }

  updatePlayLabel() {
    const playing = this.replay.playing;
    this.playBtn.textContent = playing ? `❚❚ ${t('track.pause')}` : `▶ ${t('track.play')}`;
    this.playBtn.dataset.state = playing ? 'playing' : 'paused';
  }

  seekFraction(f) {
    if (!this.track) return;
    const { times } = this.track;
    this.replay.t = times[0] + f * (times[times.length - 1] - times[0]);
    this.showReplayPoint();
  }

  /** Moves the replay marker to the replay time and updates slider and readout. */
  showReplayPoint() {
    const { samples, times, marker } = this.track;
    const tNow = this.replay.t;
    const i = lastAtOrBefore(times, tNow);
    const a = samples[i];
    const b = samples[Math.min(i + 1, samples.length - 1)];
    let lat = a.lat;
    let lon = a.lon;
    const span = times[i + 1] - times[i];
    if (b !== a && span > 0 && span <= GAP_MS) {
      const f = (tNow - times[i]) / span;
      lat = a.lat + (b.lat - a.lat) * f;
      lon = a.lon + (b.lon - a.lon) * f;
    }
    if (marker) {
      marker.setLatLng(toDisplay(lat, lon));
      const arrow = marker.getElement()?.querySelector('.replay-arrow');
      if (arrow) arrow.setAttribute('transform', `rotate(${Math.round(a.heading_deg ?? 0)} 14 14)`);
    }
    const first = times[0];
    const last = times[times.length - 1];
    this.slider.value = String(last > first ? Math.round(((tNow - first) / (last - first)) * 1000) : 0);
    replaceChildren(this.readout,
      h('span', { class: 'rd-time' }, formatDateTime(new Date(tNow))),
      h('span', null, formatUnit('unit.kmh', a.speed_kmh, 1)),
      h('span', null, `${t('detail.soc')} ${formatUnit('unit.pct', a.soc_pct, 1)}`));
  }
}

/** Index of the last time ≤ `t` (0 when `t` is before the first). */
function lastAtOrBefore(times, t) {
  let lo = 0;
  let hi = times.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (times[mid] <= t) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** Every sample from `from` to `to`, page by page, up to MAX_TRACK_SAMPLES. */
async function fetchTrack(vin, from, to) {
  const samples = [];
  const seen = new Set();
  let cursor = from.toISOString();
  for (;;) {
    const page = await api(`/vehicles/${encodeURIComponent(vin)}/track`, {
      query: { from: cursor, to: to.toISOString(), limit: TRACK_PAGE },
    });
    const got = page?.samples ?? [];
    for (const s of got) {
      if (seen.has(s.ts)) continue; // the next page starts at the last sample's time
      seen.add(s.ts);
      samples.push(s);
    }
    if (!page?.truncated || got.length === 0) return { samples, truncated: false };
    if (samples.length >= MAX_TRACK_SAMPLES) return { samples, truncated: true };
    const next = got[got.length - 1].ts;
    if (next === cursor) return { samples, truncated: true };
    cursor = next;
  }
}
