#!/usr/bin/env python3
"""Counts pixels of a PNG screenshot (Python's standard library only: zlib and the PNG filters).

Usage: png_pixels.py FILE [RRGGBB ...]
Prints `WIDTHxHEIGHT non_background=N` and, per colour given, `RRGGBB=N` (pixels within 24 of it on
each channel). The background is the colour of the top-left pixel. Exits 2 on a PNG it cannot read
(8-bit RGB or RGBA, not interlaced: what Chromium writes)."""
import struct
import sys
import zlib


def read_png(path):
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    pos, idat, ihdr = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = ihdr
    if depth != 8 or colour not in (2, 6) or interlace != 0:
        raise ValueError(f"unsupported PNG (depth {depth}, colour type {colour}, interlace {interlace})")
    bpp = 3 if colour == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows, prev = [], bytearray(stride)
    for y in range(height):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 0xFF
            elif f == 2:
                line[i] = (line[i] + b) & 0xFF
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pred) & 0xFF
        rows.append(line)
        prev = line
    return width, height, bpp, rows


def main():
    try:
        width, height, bpp, rows = read_png(sys.argv[1])
    except (OSError, ValueError, zlib.error, TypeError, struct.error) as e:
        print(f"png_pixels: {sys.argv[1]}: {e}", file=sys.stderr)
        return 2
    wanted = [(c, tuple(int(c[i:i + 2], 16) for i in (0, 2, 4))) for c in sys.argv[2:]]
    bg = tuple(rows[0][0:3])
    other = 0
    counts = {c: 0 for c, _ in wanted}
    for line in rows:
        for x in range(0, width * bpp, bpp):
            px = (line[x], line[x + 1], line[x + 2])
            if px != bg:
                other += 1
            for name, rgb in wanted:
                if all(abs(px[k] - rgb[k]) <= 24 for k in range(3)):
                    counts[name] += 1
    print(f"{width}x{height} non_background={other}")
    for name, _ in wanted:
        print(f"{name}={counts[name]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
