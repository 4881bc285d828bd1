#!/usr/bin/env python3
"""Draws Cairn's icon (a stack of four stones on a rounded tile) with the standard library
only, and writes the PNG sizes and the .ico the Tauri bundler wants. Run from anywhere:
    python3 icons/make_icons.py
"""
import math
import os
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))

TILE = (38, 70, 83)        # deep slate teal
STONES = [                 # (centre x, centre y, half width, half height, colour), bottom first
    (0.50, 0.755, 0.300, 0.095, (196, 186, 168)),
    (0.48, 0.580, 0.235, 0.085, (222, 214, 196)),
    (0.52, 0.425, 0.170, 0.072, (184, 174, 156)),
    (0.50, 0.295, 0.105, 0.058, (236, 230, 216)),
]
SHADE = 0.80               # lower half of each stone is darker


def coverage(fn, x, y, n=4):
    """Fraction of the pixel (x, y) for which fn(u, v) holds, n*n samples (anti-aliasing)."""
    hits = 0
    for i in range(n):
        for j in range(n):
            if fn(x + (i + 0.5) / n, y + (j + 0.5) / n):
                hits += 1
    return hits / (n * n)


def draw(size):
    px = [[(0, 0, 0, 0)] * size for _ in range(size)]
    r = 0.18 * size
    m = 0.04 * size

    def in_tile(u, v):
        lo, hi = m, size - m
        if not (lo <= u <= hi and lo <= v <= hi):
            return False
        cx = min(max(u, lo + r), hi - r)
        cy = min(max(v, lo + r), hi - r)
        return (u - cx) ** 2 + (v - cy) ** 2 <= r * r

    for y in range(size):
        for x in range(size):
            a = coverage(in_tile, x, y)
            if a > 0:
                px[y][x] = (*TILE, round(255 * a))
    for (cx, cy, hw, hh, col) in STONES:
        cx, cy, hw, hh = cx * size, cy * size, hw * size, hh * size

        def in_stone(u, v, cx=cx, cy=cy, hw=hw, hh=hh):
            return ((u - cx) / hw) ** 2 + ((v - cy) / hh) ** 2 <= 1.0

        for y in range(max(0, int(cy - hh) - 1), min(size, int(cy + hh) + 2)):
            for x in range(max(0, int(cx - hw) - 1), min(size, int(cx + hw) + 2)):
                a = coverage(in_stone, x, y)
                if a == 0:
                    continue
                shade = SHADE if y + 0.5 > cy + hh * 0.25 else 1.0
                stone = tuple(round(c * shade) for c in col)
                br, bg, bb, ba = px[y][x]
                out = tuple(round(s * a + b * (1 - a)) for s, b in zip(stone, (br, bg, bb)))
                px[y][x] = (*out, max(ba, round(255 * a)))
    return px


def png(px):
    h, w = len(px), len(px[0])
    raw = b"".join(b"\x00" + bytes(c for p in row for c in p) for row in px)

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 6, 0, 0, 0)  # 8-bit RGBA
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def ico(pngs):
    """An .ico holding PNG images (sizes up to 256)."""
    header = struct.pack("<HHH", 0, 1, len(pngs))
    offset = 6 + 16 * len(pngs)
    entries, blobs = b"", b""
    for size, data in pngs:
        dim = 0 if size >= 256 else size
        entries += struct.pack("<BBBBHHII", dim, dim, 0, 0, 1, 32, len(data), offset)
        offset += len(data)
        blobs += data
    return header + entries + blobs


def main():
    images = {}
    for name, size in [("32x32.png", 32), ("128x128.png", 128), ("128x128@2x.png", 256), ("icon.png", 512)]:
        data = png(draw(size))
        images[size] = data
        with open(os.path.join(HERE, name), "wb") as f:
            f.write(data)
    with open(os.path.join(HERE, "icon.ico"), "wb") as f:
        f.write(ico([(32, images[32]), (256, images[256])]))


if __name__ == "__main__":
    main()
