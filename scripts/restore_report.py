"""Restoration report for a trained face model (docs/restore.md): held-out faces aligned the way
the model's training faces were framed, scored by `prism eval stylegan` against the trivial
baselines, a figure of original | degraded | restored rows, and a grid of generated faces.
--fills M1,M2,... instead draws OUT/restore-fills.png only: the evaluation's hole filled by the
diffusion fill and by each model with its card's defaults (e.g. with and without an encoder).

    .venv/bin/python scripts/restore_report.py --model runs/NNNNN-stylegan-cpu-faces64 \
        --faces ../shared/data/faces/celeba-hq-256 --count 24 --out docs

--tune instead chooses the projection defaults for the model card (`restore: {steps, samples,
spread}` in the config, or their `encoder_` forms for an encoder model): it scores step counts and
spreads (--tune-steps, --tune-spreads; with --tune-samples samples) on *other* faces (the
--tune-count faces after the first --count, so the report's faces are never used to choose) and
writes OUT/restore-tuning.json with the face-by-face gains over the baselines. The encoder model's
32 samples and spread 1.0 were chosen on the 24 tuning faces (docs/restore.md) with
    --tune --count 16 --tune-count 24 --tune-steps 1 --tune-samples 32 --tune-spreads 0,0.8,1.0,1.2 \
        --tune-degradations mask
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


def aligned_faces(gen, faces: Path, count: int, folder: Path, skip: int = 0) -> list[Path]:
    """`count` faces with a detectable face after the first `skip` such faces, FFHQ-aligned with the
    model's crop and saved at its resolution: the evaluation then takes them as framed."""
    written, found = [], 0
    for path in list_images(faces):
        try:
            face, _ = gen.prepare(path, align=True)
        except FaceNotFound:
            print(f"skipped {path.name}: no face found")
            continue
        found += 1
        if found <= skip:
            continue
        written.append(folder / f"{path.stem}.png")
        to_pil(face)[0].save(written[-1])
        if len(written) == count:
            break
    return written


def tune(gen, faces: Path, skip: int, count: int, steps_grid: list[int], spreads: list[float], samples: int,
         degradations: tuple[str, ...], out: Path) -> None:
    """PSNR / SSIM of the restorations for each step count and spread, with one sample and the mean
    of `samples`, and the face-by-face gains over the baselines."""
    table = {}
    with tempfile.TemporaryDirectory() as tmp:
        files = aligned_faces(gen, faces, count, Path(tmp), skip=skip)
        for steps in steps_grid:
            for spread in spreads:
                r = evaluate_restoration(gen, tmp, steps=steps, samples=samples, spread=spread,
                                         degradations=degradations, progress=True)
                key = f"steps {steps}, spread {spread:g}"
                table[key] = {"rows": {k: v for k, v in r["rows"].items() if "projection" not in k},
                              "vs_baseline": r["vs_baseline"]}
                for name, row in table[key]["rows"].items():
                    print(f"{key:22s} {name:36s} PSNR {row['psnr']:.2f}  SSIM {row['ssim']:.3f}", flush=True)
                for note in r["notes"]:
                    print(f"{key:22s} {note}", flush=True)
    (out / "restore-tuning.json").write_text(json.dumps(
        {"faces": f"{faces}: {len(files)} faces after the first {skip}", "samples": samples, "by_setting": table}, indent=1))


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
    p.add_argument("--steps", type=int, default=None, help="projection steps (default: the model card's)")
    p.add_argument("--out", type=Path, default=Path("docs"))
    p.add_argument("--tune", action="store_true", help="choose steps on other faces instead (see above)")
    p.add_argument("--tune-count", type=int, default=24)
    p.add_argument("--tune-steps", default="25,50,150")
    p.add_argument("--tune-samples", type=int, default=4)
    p.add_argument("--tune-spreads", default="0")
    p.add_argument("--tune-degradations", default="gray,mask,downsample")
    p.add_argument("--fills", default=None, help="comma-separated models (or label=model): draw their fills side by side")
    a = p.parse_args()
    gen = prism.load_model(a.model)
    if a.fills:
        return fill_figure(gen, [m.strip() for m in a.fills.split(",")], a.faces, a.figure_count, a.out)
    if a.tune:
        return tune(gen, a.faces, a.count, a.tune_count, [int(v) for v in a.tune_steps.split(",")],
                    [float(v) for v in a.tune_spreads.split(",")], a.tune_samples,
                    tuple(a.tune_degradations.split(",")), a.out)
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
            if r.uncertainty is not None:  # the mask's: where the samples' fills disagree
                row.append(r.uncertainty)
            rows.append(row)
    (a.out / "restore-results.json").write_text(json.dumps(results, indent=1, default=str))
    header = ["original", "gray input", "colorized", "masked input", "filled", "fill spread"]
    labelled_grid(rows, header[:len(rows[0])]).save(a.out / "restore-rows.png")
    samples = gen.generate(32, seed=0) + gen.generate(32, seed=0, psi=0.7)
    grid = Image.new("RGB", (8 * 64, 8 * 64))
    for i, img in enumerate(samples):
        grid.paste(img.convert("RGB").resize((64, 64)), ((i % 8) * 64, (i // 8) * 64))
    grid.save(a.out / "stylegan-faces64-samples.png")
    print(json.dumps(results, indent=1, default=str))


def fill_figure(gen, models: list[str], faces: Path, count: int, out: Path) -> None:
    """original | masked | diffusion fill | each model's fill, for the first `count` faces found."""
    from prism.restore.api import to_tensor
    from prism.restore.degradations import diffusion_fill
    labels = [m.split("=", 1)[0] if "=" in m else Path(m).name[:20] for m in models]
    fillers = [prism.load_model(m.split("=", 1)[-1]) for m in models]
    hole = default_hole(gen.resolution)
    with tempfile.TemporaryDirectory() as tmp:
        rows = []
        for path in aligned_faces(gen, faces, count, Path(tmp)):
            face = Image.open(path)
            clean = to_tensor(face)
            masked = clean * (1 - hole)
            row = [face, to_pil(masked)[0], to_pil(diffusion_fill(masked, hole).clamp(0, 1))[0]]
            for filler in fillers:
                row.append(filler.restore(path, "mask", rect=_hole_rect(gen.resolution), align=False).restored)
            rows.append(row)
    header = ["original", "masked", "diffusion fill"] + labels
    labelled_grid(rows, header).save(out / "restore-fills.png")


def _hole_rect(size: int) -> tuple[int, int, int, int]:
    """The evaluation's own hole (evaluate.default_hole) as x, y, w, h in the aligned face's pixels."""
    ys, xs = default_hole(size)[0, 0].nonzero(as_tuple=True)
    return int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)


if __name__ == "__main__":
    main()
