"""Compare colorizers on the val photos (prism.evaluation's protocol): evaluate each, read a run's
training speed from its log.jsonl, and draw one contact sheet of the same 12 val photos for every
model (gray | models... | truth), and optionally one of a folder of photos without truth.

    .venv/bin/python scripts/recipe_report.py runs/recipes/0000* --val ../shared/data/colorization/intel-scenes/val \
        --sheet docs/colorization-recipes.png --json docs/colorization-recipes.json
    .venv/bin/python scripts/recipe_report.py v2=/tmp/v2-model v3=colorizer --val ... --samples samples \
        --samples-sheet docs/colorizer-samples.png

Each source is [LABEL=]PATH: a run directory (its --checkpoint), a checkpoint file, a model
directory or a bundled model's name.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from PIL import Image, ImageDraw

import prism
from prism.data.images import list_images
from prism.evaluation import evaluate_colorizer, truth_and_gray
from prism.train.checkpoint import CHECKPOINT_DIR


def training_speed(run: Path) -> dict:
    """Images/s over the run from log.jsonl timestamps (includes validation and sampling pauses)."""
    lines = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines() if x.strip()]
    cfg = (run / "config.yaml").read_text()
    batch = int(next(x.split(":")[1] for x in cfg.splitlines() if x.strip().startswith("batch_size:")))
    losses = [x for x in lines if "step" in x and "time" in x]
    steps, seconds = losses[-1]["step"] - losses[0]["step"], losses[-1]["time"] - losses[0]["time"]
    return {"steps": losses[-1]["step"], "train_images_per_s": round(steps * batch / seconds, 2) if seconds else None}


def pick_photos(val: str, count: int) -> list[Path]:
    files = list_images(val)
    stride = max(1, len(files) // count)
    return files[stride // 2::stride][:count]  # spread over the sorted class folders


def contact_sheet(columns: dict[str, list[Image.Image]], out: Path, cell: int = 150, keep_aspect: bool = False) -> None:
    """One column per model; cells of `cell` px (val photos are 150 px: 1:1). keep_aspect fits each
    image inside its cell instead of stretching it."""
    header = 22
    names = list(columns)
    rows = len(next(iter(columns.values())))
    sheet = Image.new("RGB", (len(names) * (cell + 4), header + rows * (cell + 4)), "white")
    draw = ImageDraw.Draw(sheet)
    for c, name in enumerate(names):
        draw.text((c * (cell + 4) + 4, 5), name, fill="black")
        for r, im in enumerate(columns[name]):
            im = im.convert("RGB")
            if keep_aspect:
                im.thumbnail((cell, cell), Image.LANCZOS)
            else:
                im = im.resize((cell, cell))
            sheet.paste(im, (c * (cell + 4), header + r * (cell + 4)))
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out)


def skimage_neutral_photos() -> list[Path]:
    """scikit-image's coffee and chelsea (a white cup, a gray-brown cat: much near-neutral colour),
    written where evaluate_colorizer can read them."""
    import tempfile

    from skimage import data
    folder = Path(tempfile.mkdtemp(prefix="prism-neutral-"))
    for name in ("coffee", "chelsea"):
        Image.fromarray(getattr(data, name)()).save(folder / f"{name}.png")
    return sorted(folder.iterdir())


def load_source(source: str, checkpoint: str):
    """[LABEL=]PATH[*SATURATION] -> (label, model, run dir or None, saturation)."""
    label, _, path = source.rpartition("=")
    path, _, saturation = path.partition("*")
    run = Path(path) if (Path(path) / "config.yaml").is_file() else None
    model = prism.load_model(run / CHECKPOINT_DIR / checkpoint if run else path)
    return label or (run.name.split("-", 1)[1] if run else Path(path).name), model, run, float(saturation or 1.0)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("sources", nargs="+", help="[LABEL=]PATH[*SATURATION]: run dir, checkpoint, model dir or bundled "
                                              "name, optionally scored at a chroma scale (as --saturation)")
    p.add_argument("--sheet-columns", default=None, help="comma-separated labels drawn in the sheets (default: all)")
    p.add_argument("--val", required=True)
    p.add_argument("--sheet", type=Path, default=Path("docs/colorization-recipes.png"))
    p.add_argument("--json", type=Path, default=Path("docs/colorization-recipes.json"))
    p.add_argument("--photos", type=int, default=12)
    p.add_argument("--checkpoint", default="latest.pt", help="of a run: compare final weights, not the best-PSNR ones")
    p.add_argument("--samples", default=None, help="a folder of photos without truth (e.g. samples/) for a second sheet")
    p.add_argument("--samples-sheet", type=Path, default=Path("docs/colorizer-samples.png"))
    a = p.parse_args()

    photos = pick_photos(a.val, a.photos)
    truths, grays = zip(*(truth_and_gray(f) for f in photos))
    columns = {"gray input": [Image.fromarray((g * 255 + 0.5).astype("uint8")) for g in grays]}
    sample_files = list_images(a.samples) if a.samples else []
    sample_columns = {"input": [Image.open(f).convert("RGB") for f in sample_files]}
    table = {}
    for source in a.sources:
        name, model, run, saturation = load_source(source, a.checkpoint)
        result = evaluate_colorizer(model, a.val, progress=False, saturation=saturation)
        neutral = evaluate_colorizer(model, None, files=skimage_neutral_photos(), progress=False,
                                     saturation=saturation)["rows"]
        table[name] = {**result["rows"]["model"], "neutral_cast_skimage": neutral["model"]["neutral_cast"],
                       **(training_speed(run) if run else {}), "colorize_images_per_s": result["images_per_s"]}
        table.setdefault("gray baseline", result["rows"]["gray baseline"])
        table.setdefault("ground truth", result["rows"]["ground truth"])
        table["gray baseline"].setdefault("neutral_cast_skimage", neutral["gray baseline"]["neutral_cast"])
        if a.sheet_columns is None or name in a.sheet_columns.split(","):
            columns[name] = model.colorize_batch(list(grays), saturation)
            if sample_files:
                sample_columns[name] = model.colorize_batch(sample_files, saturation)
        print(name, json.dumps(table[name]))
    columns["ground truth"] = [Image.fromarray((t.permute(1, 2, 0).numpy() * 255 + 0.5).astype("uint8")) for t in truths]
    contact_sheet(columns, a.sheet)
    if sample_files:
        contact_sheet(sample_columns, a.samples_sheet, cell=320, keep_aspect=True)
        print(f"samples sheet: {a.samples_sheet}")
    a.json.write_text(json.dumps({"val": a.val, "checkpoint": a.checkpoint, "photos": [str(x) for x in photos],
                                  "scored": result["count"], "left_out": result["left_out"],
                                  "rows": table}, indent=1))
    print(f"{result['count']} val photos scored; {result['left_out']['count']} left out: {result['left_out']['rule']}")
    print("| model | PSNR mean / median / pooled | SSIM | CIEDE2000 | colourfulness (x truth) | neutral cast val / "
          "coffee+chelsea | beats gray | train img/s | colorize img/s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, r in table.items():
        psnr = f"{r['psnr']:.2f} / {r.get('psnr_median', r['psnr']):.2f} / {r.get('psnr_pooled', r['psnr']):.2f}"
        beats = f"{r['beats_gray']:.0%}" if "beats_gray" in r else ""
        print(f"| {name} | {psnr} | {r['ssim']:.3f} | {r['ciede2000']:.2f} | "
              f"{r['colorfulness']:.1f} ({r['colorfulness_ratio']:.2f}) | {r.get('neutral_cast', float('nan')):.2f} / {r.get('neutral_cast_skimage', float('nan')):.2f} | {beats} | "
              f"{r.get('train_images_per_s', '')} | {r.get('colorize_images_per_s', '')} |")
    print(f"contact sheet: {a.sheet}")


if __name__ == "__main__":
    main()
