"""Look for artifacts at large sizes: colorize each photo resized to 150, 1024 and 4000 px (long
side) and lay out, per photo, the three outputs shown at one display size plus a 1:1 crop of the
4000 px output (where upsampled-chroma seams, halos or blocks would show).

    .venv/bin/python scripts/large_photo_check.py --model colorizer -o docs/colorize-large-photos.png PHOTO...
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from PIL import Image, ImageDraw

import prism

SIZES = (150, 1024, 4000)


def resized(im: Image.Image, long_side: int) -> Image.Image:
    s = long_side / max(im.size)
    return im.resize((max(1, round(im.width * s)), max(1, round(im.height * s))), Image.LANCZOS)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("photos", nargs="+", type=Path)
    p.add_argument("--model", default="colorizer")
    p.add_argument("-o", "--out", type=Path, default=Path("docs/colorize-large-photos.png"))
    p.add_argument("--cell", type=int, default=300)
    a = p.parse_args()
    model = prism.load_model(a.model)
    cell, header = a.cell, 22
    titles = [f"{s} px (shown at {cell})" for s in SIZES] + ["4000 px, 1:1 crop"]
    rows = []
    for path in a.photos:
        gray = Image.open(path).convert("L")
        row = []
        for size in SIZES:
            t0 = time.perf_counter()
            out = model.colorize(resized(gray, size))
            print(f"{path.name} at {size}px: {out.size[0]}x{out.size[1]} in {time.perf_counter() - t0:.2f} s")
            row.append(resized(out, cell))
        cx, cy = out.width // 2 - cell // 2, out.height // 2 - cell // 2
        row.append(out.crop((cx, cy, cx + cell, cy + cell)))
        rows.append(row)
    heights = [max(im.height for im in row) for row in rows]
    sheet = Image.new("RGB", (len(titles) * (cell + 4), header + sum(h + 4 for h in heights)), "white")
    draw = ImageDraw.Draw(sheet)
    for c, t in enumerate(titles):
        draw.text((c * (cell + 4) + 4, 5), t, fill="black")
    y = header
    for row, h in zip(rows, heights):
        for c, im in enumerate(row):
            sheet.paste(im, (c * (cell + 4), y))
        y += h + 4
    a.out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(a.out)
    print(f"written {a.out}")


if __name__ == "__main__":
    main()
