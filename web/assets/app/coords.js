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
