// Display coordinates. The API speaks WGS-84 only; Chinese web tiles (AMap, Tencent) are
// drawn in GCJ-02, about 480 m off here. While such a layer is shown, every position is
// shifted for display, and only for display: what the page keeps and reports stays WGS-84.

/* global gcoord */

let gcj02 = false;

/** Sets the coordinate system of the base layer on screen: `wgs84` or `gcj02`. */
export function setDisplayCrs(crs) {
  gcj02 = crs === 'gcj02';
}

export function displayCrs() {
  return gcj02 ? 'gcj02' : 'wgs84';
}

/** WGS-84 `lat, lon` → `[lat, lon]` to draw on the current base layer. */
export function toDisplay(lat, lon) {
  if (!gcj02) return [lat, lon];
  const [x, y] = gcoord.transform([lon, lat], gcoord.WGS84, gcoord.GCJ02);
  return [y, x];
}

/** True when `lat`/`lon` are usable numbers. */
export function hasPosition(s) {
  return s != null && Number.isFinite(s.lat) && Number.isFinite(s.lon);
}

/** A point drawn on the current base layer → WGS-84 `[lat, lon]` (the inverse of toDisplay). */
export function fromDisplay(lat, lon) {
  if (!gcj02) return [lat, lon];
  const [x, y] = gcoord.transform([lon, lat], gcoord.GCJ02, gcoord.WGS84);
  return [y, x];
}

/** Great-circle distance in km between two `{lat, lon}` (WGS-84). */
export function distanceKm(a, b) {
  const rad = Math.PI / 180;
  const dLat = (b.lat - a.lat) * rad;
  const dLon = (b.lon - a.lon) * rad;
  const s = Math.sin(dLat / 2) ** 2 + Math.cos(a.lat * rad) * Math.cos(b.lat * rad) * Math.sin(dLon / 2) ** 2;
  return 12742 * Math.asin(Math.min(1, Math.sqrt(s)));
}
