// The month's misuse alarms (公车私用): one row per suspicious trip with its reasons, and
// "view track", which loads the trip's samples and draws them on a small offline map.

/* global L */

import { api, ApiError } from '../lib/api.js';
import { h, replaceChildren } from '../lib/dom.js';
import { t, lang, formatDateTime, formatNumber, onLangChange, TIME_ZONE } from '../lib/i18n.js';
import { BaseMap } from '../lib/basemap.js';

/** Pages of samples fetched for one track at most (each up to the API's default limit). */
const MAX_TRACK_PAGES = 5;
const API_PREFIX = '/api/v1';

/** Alarm reasons the dictionaries name; others show as their code. */
export const REASONS = ['no_order', 'off_hours', 'outside_area'];

function reasonText(code) {
  return REASONS.includes(code) ? t(`stats.reason.${code}`) : code;
}

const LOCALE = { zh: 'zh-CN', en: 'en-GB' };

/** `start – end`, the end as a time of day only when it is the same day (Asia/Shanghai). */
function span(start, end) {
  const day = new Intl.DateTimeFormat('en-CA', { timeZone: TIME_ZONE, year: 'numeric', month: '2-digit', day: '2-digit' });
  const a = new Date(start);
  const b = new Date(end);
  if (Number.isNaN(a.getTime()) || Number.isNaN(b.getTime()) || day.format(a) !== day.format(b)) {
    return `${formatDateTime(start)} – ${formatDateTime(end)}`;
  }
  const time = new Intl.DateTimeFormat(LOCALE[lang()], { timeZone: TIME_ZONE, hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
  return `${formatDateTime(start)} – ${time.format(b)}`;
}

function key(a) {
  return `${a.vin}|${a.start_ts}`;
}

export class AlarmPanel {
  constructor({ list, count, mapEl, hint }) {
    this.list = list;
    this.count = count;
    this.mapEl = mapEl;
    this.hint = hint;
    this.alarms = [];
    this.error = null;
    this.selected = null;
    this.base = null;
    this.trackLayer = null;
    this.loadSeq = 0;
    list.addEventListener('click', (ev) => {
      const btn = ev.target.closest('button.st-track-btn');
      if (btn) this.showTrack(btn.closest('li').dataset.key);
    });
    onLangChange(() => this.redrawTrackTooltips());
  }

  /** Shows `alarms` (already narrowed to what the page's filter asks for), or an error key. */
  set(alarms, errorKey = null) {
    this.ensureMap(); // the islands show before any track is picked
    this.alarms = [...(alarms ?? [])].sort((a, b) => String(b.start_ts).localeCompare(String(a.start_ts)));
    this.error = errorKey;
    if (this.selected && !this.alarms.some((a) => key(a) === this.selected)) this.clearTrack();
    this.render();
  }

  render() {
    const n = this.alarms.length;
    this.count.hidden = !n;
    this.count.textContent = String(n);
    if (this.error) {
      replaceChildren(this.list, h('li', { class: 'st-alarm-empty st-alarm-error' }, t(this.error)));
      return;
    }
    if (!n) {
      replaceChildren(this.list, h('li', { class: 'st-alarm-empty' }, t('stats.alarms.empty')));
      return;
    }
    replaceChildren(this.list, this.alarms.map((a) => h('li', {
      class: `st-alarm${key(a) === this.selected ? ' selected' : ''}`,
      'data-key': key(a),
      'data-vin': a.vin,
    },
    h('div', { class: 'st-alarm-top' },
      h('span', { class: 'st-plate', title: a.vin }, a.plate || a.vin),
      h('span', { class: 'st-alarm-km' }, t('unit.km', { v: formatNumber(a.distance_km, 1) }))),
    h('div', { class: 'st-alarm-time' }, span(a.start_ts, a.end_ts)),
    h('div', { class: 'st-alarm-bottom' },
      h('span', { class: 'st-reasons' }, (a.reasons ?? []).map((r) => h('span', { class: `st-reason ${r}`, 'data-reason': r }, reasonText(r)))),
      h('button', { type: 'button', class: 'btn btn-small st-track-btn' }, t('stats.alarms.view_track'))))));
  }

  ensureMap() {
    if (this.base) return;
    this.base = new BaseMap(this.mapEl);
    this.trackLayer = L.featureGroup().addTo(this.base.map);
  }

  clearTrack() {
    this.selected = null;
    this.loadSeq += 1; // a track still loading is not drawn
    this.ends = [];
    this.trackLayer?.clearLayers();
    this.hint.hidden = false;
    this.hint.textContent = t('stats.alarms.hint');
    delete this.hint.dataset.state;
  }

  /** Loads the alarm's track and draws it; resolves to the number of points drawn. */
  async showTrack(alarmKey) {
    const alarm = this.alarms.find((a) => key(a) === alarmKey);
    if (!alarm) return 0;
    this.ensureMap();
    this.selected = alarmKey;
    this.render();
    const seq = ++this.loadSeq;
    this.hint.hidden = false;
    this.hint.dataset.state = 'loading';
    this.hint.textContent = t('stats.alarms.track_loading');
    let samples;
    try {
      samples = await loadTrack(alarm.track);
    } catch (e) {
      if (seq !== this.loadSeq) return 0;
      this.hint.dataset.state = 'error';
      this.hint.textContent = t('stats.alarms.track_error', { message: e instanceof ApiError ? e.message : String(e?.message ?? e) });
      return 0;
    }
    if (seq !== this.loadSeq) return 0;
    this.ends = [];
    const points = samples.filter((s) => s.position_valid !== false && !s.clock_ahead && Number.isFinite(s.lat) && Number.isFinite(s.lon));
    this.trackLayer.clearLayers();
    if (!points.length) {
      this.hint.dataset.state = 'error';
      this.hint.textContent = t('stats.alarms.track_empty');
      return 0;
    }
    this.hint.hidden = true;
    const latlngs = points.map((s) => [s.lat, s.lon]);
    L.polyline(latlngs, { color: '#c92a2a', weight: 4, opacity: 0.85 }).addTo(this.trackLayer);
    this.ends = [
      { marker: L.circleMarker(latlngs[0], { radius: 7, color: '#fff', weight: 2, fillColor: '#2f9e44', fillOpacity: 1 }), key: 'stats.alarms.start', ts: points[0].ts },
      { marker: L.circleMarker(latlngs.at(-1), { radius: 7, color: '#fff', weight: 2, fillColor: '#c92a2a', fillOpacity: 1 }), key: 'stats.alarms.end', ts: points.at(-1).ts },
    ];
    for (const e of this.ends) e.marker.addTo(this.trackLayer);
    this.redrawTrackTooltips();
    this.base.map.invalidateSize();
    this.base.map.fitBounds(this.trackLayer.getBounds(), { padding: [24, 24], maxZoom: 15 });
    this.mapEl.dataset.points = String(points.length);
    return points.length;
  }

  redrawTrackTooltips() {
    for (const e of this.ends ?? []) {
      e.marker.unbindTooltip();
      e.marker.bindTooltip(h('span', null, `${t(e.key)} ${formatDateTime(e.ts)}`), { direction: 'top', offset: [0, -6] });
    }
    if (this.selected == null) this.hint.textContent = t('stats.alarms.hint');
  }
}

/** The samples of a track path from the alarm list, following `truncated` pages. */
async function loadTrack(path) {
  const rel = path.startsWith(API_PREFIX) ? path.slice(API_PREFIX.length) : path;
  const samples = [];
  let next = rel;
  for (let page = 0; page < MAX_TRACK_PAGES && next; page += 1) {
    const res = await api(next);
    const got = res?.samples ?? [];
    samples.push(...(page > 0 ? got.filter((s) => s.ts > samples.at(-1)?.ts) : got));
    next = null;
    if (res?.truncated && got.length) {
      const url = new URL(rel, location.origin);
      url.searchParams.set('from', got.at(-1).ts);
      next = url.pathname + url.search;
    }
  }
  return samples;
}
