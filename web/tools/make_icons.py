#!/usr/bin/env python3
"""Draw the driver page's home-screen icons (192 and 512 px PNG) from the page icon's shapes.

The web manifest of `/driver` needs raster icons; the pages' own icon is an SVG
(`web/assets/lib/icon.svg`: a blue rounded square, a white car, a yellow bolt, a light-blue
wave). This dev-time script draws the same shapes, with the Python standard library only
(no Pillow): each shape is a signed distance field evaluated once per pixel, which gives
anti-aliased edges without supersampling, and the image is written as an RGBA PNG with
`zlib` and `struct`. It is never run by a build; run it again only to change the icons:

    python3 web/tools/make_icons.py            # writes web/assets/driver/icon-{192,512}.png

The shapes leave a margin around the car and bolt, so the icons also survive the circular
and squircle masks of Android launchers.
"""

from __future__ import annotations

import argparse
import math
import struct
import sys
import zlib
from pathlib import Path

# The SVG's coordinate system: a 32 × 32 box.
VIEW = 32.0

BRAND = (0x0F, 0x4C, 0x81)
WAVE = (0x7C, 0xC4, 0xF5)
WHITE = (0xFF, 0xFF, 0xFF)
BOLT = (0xFF, 0xD4, 0x3B)

# The car's outline (the SVG path with its small corner curves as straight cuts).
CAR = [
    (8.0, 17.5), (9.7, 12.9), (10.3, 12.0), (11.6, 11.6), (20.4, 11.6), (21.7, 12.0), (22.3, 12.9),
    (24.0, 17.5), (24.0, 19.8), (23.1, 20.7), (21.8, 20.7), (20.9, 19.8), (20.9, 19.0),
    (11.1, 19.0), (11.1, 19.8), (10.2, 20.7), (8.9, 20.7), (8.0, 19.8),
]
LIGHTS = [((11.0, 17.2), 1.2), ((21.0, 17.2), 1.2)]
BOLT_SHAPE = [(17.2, 5.5), (13.8, 10.1), (16.3, 10.1), (15.6, 13.5), (19.1, 8.8), (16.6, 8.8)]


def sd_round_rect(x: float, y: float, x0: float, y0: float, x1: float, y1: float, r: float) -> float:
    """Signed distance to a rounded rectangle (negative inside)."""
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    hx, hy = (x1 - x0) / 2 - r, (y1 - y0) / 2 - r
    qx, qy = abs(x - cx) - hx, abs(y - cy) - hy
    outside = math.hypot(max(qx, 0.0), max(qy, 0.0))
    return outside + min(max(qx, qy), 0.0) - r


def sd_segment(x: float, y: float, ax: float, ay: float, bx: float, by: float) -> float:
    """Distance to the segment a–b."""
    dx, dy = bx - ax, by - ay
    t = ((x - ax) * dx + (y - ay) * dy) / (dx * dx + dy * dy)
    t = min(1.0, max(0.0, t))
    return math.hypot(x - ax - t * dx, y - ay - t * dy)


def sd_polygon(x: float, y: float, pts: list[tuple[float, float]]) -> float:
    """Signed distance to a simple polygon (negative inside, by the even-odd rule)."""
    d = math.inf
    inside = False
    n = len(pts)
    for i in range(n):
        ax, ay = pts[i]
        bx, by = pts[(i + 1) % n]
        d = min(d, sd_segment(x, y, ax, ay, bx, by))
        if (ay > y) != (by > y) and x < ax + (y - ay) * (bx - ax) / (by - ay):
            inside = not inside
    return -d if inside else d


def wave_points() -> list[tuple[float, float]]:
    """The SVG's wave (two cubic arcs per period) sampled as a polyline."""
    pts = []
    for i in range(97):
        x = 3.0 + 26.0 * i / 96
        # Crests every 6.5 units, 1.6 units deep, starting at a crest on y = 23.5.
        phase = (x - 3.0) / 6.5 * math.pi
        pts.append((x, 22.7 + 0.8 * math.cos(phase)))
    return pts


def bbox(pts: list[tuple[float, float]], pad: float) -> tuple[float, float, float, float]:
    xs = [p[0] for p in pts]
    ys = [p[1] for p in pts]
    return min(xs) - pad, min(ys) - pad, max(xs) + pad, max(ys) + pad


def render(size: int) -> bytes:
    """The icon as raw RGBA rows, `size` × `size`."""
    unit = VIEW / size  # SVG units per pixel
    wave = wave_points()
    wave_box = bbox(wave, 1.5)
    car_box = bbox(CAR, 1.0)
    bolt_box = bbox(BOLT_SHAPE, 1.0)

    def cover(d: float) -> float:
        # One pixel of soft edge: full inside, none outside.
        return min(1.0, max(0.0, 0.5 - d / unit))

    rows = bytearray()
    for py in range(size):
        rows.append(0)  # PNG filter type 0 (none) for this row
        y = (py + 0.5) * unit
        for px in range(size):
            x = (px + 0.5) * unit
            alpha = cover(sd_round_rect(x, y, 0.0, 0.0, VIEW, VIEW, 7.0))
            r, g, b = BRAND
            layers = []
            if wave_box[0] <= x <= wave_box[2] and wave_box[1] <= y <= wave_box[3]:
                d = min(sd_segment(x, y, *wave[i], *wave[i + 1]) for i in range(len(wave) - 1)) - 0.9
                layers.append((WAVE, cover(d)))
            if car_box[0] <= x <= car_box[2] and car_box[1] <= y <= car_box[3]:
                layers.append((WHITE, cover(sd_polygon(x, y, CAR))))
                for (cx, cy), rad in LIGHTS:
                    layers.append((BRAND, cover(math.hypot(x - cx, y - cy) - rad)))
            if bolt_box[0] <= x <= bolt_box[2] and bolt_box[1] <= y <= bolt_box[3]:
                layers.append((BOLT, cover(sd_polygon(x, y, BOLT_SHAPE))))
            for (lr, lg, lb), a in layers:
                if a > 0:
                    r, g, b = r + (lr - r) * a, g + (lg - g) * a, b + (lb - b) * a
            rows += bytes((round(r), round(g), round(b), round(alpha * 255)))
    return bytes(rows)


def png(size: int, raw: bytes) -> bytes:
    """A PNG file of 8-bit RGBA rows (each row already prefixed with its filter byte)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)  # RGBA, 8 bits, no interlace
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def main() -> int:
    here = Path(__file__).resolve().parent
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=here.parent / "assets" / "driver", help="output directory")
    parser.add_argument("--sizes", type=int, nargs="+", default=[192, 512])
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for size in args.sizes:
        path = args.out / f"icon-{size}.png"
        path.write_bytes(png(size, render(size)))
        print(f"wrote {path} ({path.stat().st_size} bytes)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
