"""Draw the app icons (PNG, no image library needed): `python tools/make_icons.py`.

A blue square with a white broadcast mark (a dot and two arcs). The maskable
icon keeps the mark inside the central 80 % safe zone (W3C "maskable" icons).
"""

from __future__ import annotations

import math
import struct
import zlib
from pathlib import Path

BLUE = (11, 87, 208)
WHITE = (255, 255, 255)
OUT = Path(__file__).resolve().parent.parent / "static" / "icons"


def png(size: int, pixel) -> bytes:
    """Encode an RGB image given pixel(x, y) -> (r, g, b)."""
    rows = b"".join(b"\x00" + bytes(c for x in range(size) for c in pixel(x, y)) for y in range(size))
    chunk = lambda kind, data: struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b"")


def mark(size: int, scale: float):
    """pixel(x, y) of the broadcast mark, drawn within scale × size around the lower-left origin."""
    span = size * scale
    ox, oy = (size - span) / 2 + span * 0.18, (size + span) / 2 - span * 0.18

    def pixel(x: int, y: int):
        dx, dy = x + 0.5 - ox, oy - (y + 0.5)
        r = math.hypot(dx, dy)
        if r < span * 0.09:
            return WHITE
        if dx >= -span * 0.02 and dy >= -span * 0.02:
            for inner in (0.28, 0.50):
                if span * inner <= r <= span * (inner + 0.12):
                    return WHITE
        return BLUE

    return pixel


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, size, scale in (("icon-192.png", 192, 0.8), ("icon-512.png", 512, 0.8),
                              ("maskable-512.png", 512, 0.6), ("apple-touch-icon.png", 180, 0.8)):
        (OUT / name).write_bytes(png(size, mark(size, scale)))
        print(f"wrote static/icons/{name}")


if __name__ == "__main__":
    main()
