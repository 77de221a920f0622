"""Restoration report for a trained face model (docs/restore.md): held-out faces aligned the way
the model's training faces were framed, scored by `prism eval stylegan` against the trivial
baselines, a figure of original | degraded | restored rows, and a grid of generated faces.

    .venv/bin/python scripts/restore_report.py --model runs/NNNNN-stylegan-cpu-faces64 \
        --faces ../shared/data/faces/celeba-hq-256 --count 24 --out docs
"""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from PIL import Image, ImageDraw

import prism
from prism.data.images import list_images
from prism.restore.align import FaceNotFound
from prism.restore.api import to_pil
from prism.restore.evaluate import default_hole, evaluate_restoration

CELL = 128  # faces are drawn at 128 px in the figures (the model's 64 px, nearest-upscaled)


def aligned_faces(gen, faces: Path, count: int, folder: Path) -> list[Path]:
    """The first `count` faces with a detectable face, FFHQ-aligned with the model's crop and
    saved at its resolution: the evaluation then takes them as framed (no second alignment)."""
    written = []
    for path in list_images(faces):
        try:
            face, _ = gen.prepare(path, align=True)
        except FaceNotFound:
            print(f"skipped {path.name}: no face found")
            continue
        written.append(folder / f"{path.stem}.png")
        to_pil(face)[0].save(written[-1])
        if len(written) == count:
            break
    return written


def labelled_grid(rows: list[list[Image.Image]], header: list[str]) -> Image.Image:
    top = 18
    sheet = Image.new("RGB", (CELL * len(header), top + CELL * len(rows)), "white")
    draw = ImageDraw.Draw(sheet)
    for c, name in enumerate(header):
        draw.text((c * CELL + 4, 3), name, fill="black")
    for r, row in enumerate(rows):
        for c, img in enumerate(row):
            sheet.paste(img.convert("RGB").resize((CELL, CELL), Image.NEAREST), (c * CELL, top + r * CELL))
    return sheet


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--faces", type=Path, required=True, help="faces the model never saw (held out)")
    p.add_argument("--count", type=int, default=24)
    p.add_argument("--figure-count", type=int, default=6)
    p.add_argument("--steps", type=int, default=150)
    p.add_argument("--out", type=Path, default=Path("docs"))
    a = p.parse_args()
    gen = prism.load_model(a.model)
    with tempfile.TemporaryDirectory() as tmp:
        files = aligned_faces(gen, a.faces, a.count, Path(tmp))
        results = evaluate_restoration(gen, tmp, steps=a.steps, progress=True)
        results["data"] = f"{a.faces}: the first {len(files)} faces, FFHQ-aligned with the model's crop (dlib)"
        rows = []
        for path in files[: a.figure_count]:
            row = [Image.open(path)]
            for degradation, kwargs in (("gray", {}), ("mask", {"rect": _hole_rect(gen.resolution)})):
                r = gen.restore(path, degradation=degradation, steps=a.steps, align=False, frame_every=0,
                                progress=False, **kwargs)
                row += [r.observed, r.restored]
            rows.append(row)
    (a.out / "restore-results.json").write_text(json.dumps(results, indent=1, default=str))
    labelled_grid(rows, ["original", "gray input", "colorized", "masked input", "filled"]).save(a.out / "restore-rows.png")
    samples = gen.generate(32, seed=0) + gen.generate(32, seed=0, psi=0.7)
    grid = Image.new("RGB", (8 * 64, 8 * 64))
    for i, img in enumerate(samples):
        grid.paste(img.convert("RGB").resize((64, 64)), ((i % 8) * 64, (i // 8) * 64))
    grid.save(a.out / "stylegan-faces64-samples.png")
    print(json.dumps(results, indent=1, default=str))


def _hole_rect(size: int) -> tuple[int, int, int, int]:
    """The evaluation's own hole (evaluate.default_hole) as x, y, w, h in the aligned face's pixels."""
    ys, xs = default_hole(size)[0, 0].nonzero(as_tuple=True)
    return int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)


if __name__ == "__main__":
    main()
