"""Checkerboard and stripe indices (prism.artifacts) of the shipped generators' outputs beside real
photos of the same domain: CycleGAN photo -> Monet on the photos it held out of training (and on
the Monet paintings), OASIS on CamVid val label maps (against the real val photos). Prints a table
of medians over images; a generator is clean when its indices are near the real photos'.

    .venv/bin/python benchmarks/artifact_indices.py [--data ../shared/data] [--count 40]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

import prism
from prism.artifacts import artifact_indices
from prism.data.images import list_images, read_image
from prism.data.unpaired import spread_holdout


def chw(image) -> torch.Tensor:
    arr = np.asarray(image.convert("RGB") if hasattr(image, "convert") else image, dtype=np.float32)
    return torch.from_numpy(arr / 255.0 if arr.max() > 1.5 else arr).permute(2, 0, 1)


def cyclegan_rows(data: Path, count: int) -> list[tuple[str, dict]]:
    model = prism.load_model("models/cyclegan-monet-cpu")
    cfg = model.card["training"]["config"]["data"]
    _, held_out = spread_holdout(list_images(data / "unpaired/monet2photo/photo"), cfg["holdout"])
    extra = list_images(data / "unpaired/monet2photo/photo")[-count:]  # the last photos (in training: see note)
    rows = []
    for name, files in (("held-out photos (8)", held_out), (f"last {count} photos", extra)):
        photos = [read_image(f).rgb for f in files]
        fakes = model.translate_batch([(p * 255).astype(np.uint8) for p in photos], "AtoB", 8)
        rows.append((f"cyclegan: {name}, input", artifact_indices([torch.from_numpy(p).permute(2, 0, 1) for p in photos])))
        rows.append((f"cyclegan: {name}, translated", artifact_indices([chw(f) for f in fakes])))
    monets = [torch.from_numpy(read_image(f).rgb).permute(2, 0, 1) for f in list_images(data / "unpaired/monet2photo/monet")[:count]]
    rows.append((f"real Monet paintings ({len(monets)})", artifact_indices(monets)))
    return rows


def oasis_rows(data: Path, count: int) -> list[tuple[str, dict]]:
    from prism.evaluation import labelled_set
    synth = prism.load_model("models/oasis-camvid-cpu")
    ds = labelled_set(synth.card, data / "semantic/camvid/val", data / "semantic/camvid/valannot")
    picks = np.linspace(0, len(ds) - 1, min(count, len(ds))).round().astype(int)
    reals, fakes = [], []
    for i in picks:
        sample = ds[int(i)]
        reals.append(sample["image"])
        fakes.append(chw(synth.synthesize(sample["label"], 0, instance=sample.get("instance"))))
    return [(f"oasis camvid val: real photos ({len(reals)})", artifact_indices(reals)),
            (f"oasis camvid val: synthesized, seed 0 ({len(fakes)})", artifact_indices(fakes))]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data", type=Path, default=Path("../shared/data"))
    p.add_argument("--count", type=int, default=40)
    a = p.parse_args()
    rows = cyclegan_rows(a.data, a.count) + oasis_rows(a.data, a.count)
    width = max(len(r[0]) for r in rows)
    print(f"{'images':<{width}}  checkerboard  stripe  (medians over images)")
    for name, r in rows:
        print(f"{name:<{width}}  {r['checkerboard']:12.2f}  {r['stripe']:6.2f}")


if __name__ == "__main__":
    main()
