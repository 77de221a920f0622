"""pix2pix label map -> photo on CMP Facades test pairs: per-image L1 / PSNR / SSIM of each model
against the real photo, beside a constant image of the training photos' mean colour (the baseline a
blurry model drifts to); EfficientNet-Lite0 Frechet distance / KID to the real test photos (a flat
image scores per-pixel metrics well but is far from photos in distribution); checkerboard and stripe
indices (prism.artifacts) and a sharpness measure (the standard deviation of the luminance's
3x3 Laplacian, per image: blur lowers it, noise raises it) beside the real photos'. Medians and quartiles as well as means: a mean over
106 images can be ruled by a few.

    .venv/bin/python benchmarks/facades_scores.py MODEL [MODEL ...] [--data ../shared/data/paired/facades]
        [--sheet docs/facades-contact-sheet.png] [--json scores.json]

Images are scored at their own size (256 px halves), as `prism translate` draws them.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

import prism
from prism.artifacts import artifact_indices
from prism.data.images import list_images
from prism.evaluation.translation import split_pair
from prism.fid.effnet_features import effnet_distances
from prism.metrics import paired_metrics


def halves(path) -> tuple[np.ndarray, np.ndarray]:
    """A pair image -> (photo = left half A, label map = right half B), uint8 HxWx3, split as
    `prism eval pix2pix` splits it."""
    chw = torch.from_numpy(np.array(Image.open(path).convert("RGB"))).permute(2, 0, 1)
    return tuple(half.permute(1, 2, 0).numpy() for half in split_pair(chw))


def to_tensor(images) -> torch.Tensor:
    return torch.stack([torch.from_numpy(np.asarray(im)).permute(2, 0, 1).float() / 255 for im in images])


def sharpness(images: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) in [0, 1] -> (N,) std of the Laplacian of the luminance: the classic blur measure."""
    import kornia
    lum = kornia.color.rgb_to_grayscale(images)
    return kornia.filters.laplacian(lum, 3).flatten(1).std(1)


def summary(values: torch.Tensor) -> dict:
    q = np.percentile(values.numpy(), [25, 50, 75])
    return {"mean": float(values.mean()), "q25": float(q[0]), "median": float(q[1]), "q75": float(q[2])}


def contact_sheet(labels, columns: list[tuple[str, list]], path: str, rows: int = 8) -> None:
    """label | each column | ..., `rows` test pairs spread over the folder, 256-px tiles at 1:1."""
    picks = [round(i * (len(labels) - 1) / (rows - 1)) for i in range(rows)]
    names = [("label map", labels)] + columns
    tile = 256
    sheet = Image.new("RGB", (tile * len(names), 18 + tile * rows), "white")
    draw = ImageDraw.Draw(sheet)
    for j, (name, images) in enumerate(names):
        draw.text((j * tile + 4, 3), name, fill="black")
        for r, i in enumerate(picks):
            sheet.paste(Image.fromarray(np.asarray(images[i])).resize((tile, tile)), (j * tile, 18 + r * tile))
    sheet.save(path)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("models", nargs="+")
    p.add_argument("--data", default="../shared/data/paired/facades")
    p.add_argument("--sheet")
    p.add_argument("--json")
    args = p.parse_args()
    test = [halves(f) for f in list_images(Path(args.data) / "test")]
    photos, labels = [t[0] for t in test], [t[1] for t in test]
    mean_colour = np.mean([halves(f)[0].reshape(-1, 3).mean(0) for f in list_images(Path(args.data) / "train")], 0)
    constant = [np.full(im.shape, mean_colour.round(), np.uint8) for im in photos]
    print(f"{len(photos)} test pairs; constant baseline colour {tuple(np.round(mean_colour / 255, 3))}")

    outputs = [("constant mean colour", constant)]
    for m in args.models:
        outputs.append((m, [np.asarray(im) for im in prism.load_model(m).translate_batch(labels, None, 8)]))
    outputs.append(("real photos", photos))
    target = to_tensor(photos)
    results = {}
    for name, images in outputs:
        row = {}
        if name != "real photos":
            per_image = paired_metrics(to_tensor(images), target)
            row = {k: summary(v) for k, v in per_image.items()}
            row.update(effnet_distances(photos, list(images), cache=False))
        row.update(artifact_indices(list(to_tensor(images))))
        row["sharpness"] = summary(sharpness(to_tensor(images)))
        results[name] = row
    print("| images | L1 mean (median) | PSNR mean (median) | SSIM mean (median) | FD EfficientNet-Lite0 | KID | checkerboard | stripe "
          "| sharpness median |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, r in results.items():
        cells = [f"{r[k]['mean']:.4f} ({r[k]['median']:.4f})" if k == "l1" else f"{r[k]['mean']:.3f} ({r[k]['median']:.3f})"
                 for k in ("l1", "psnr", "ssim")] if "l1" in r else ["-", "-", "-"]
        cells += [f"{r['fd_effnet_lite0']:.1f}", f"{r['kid_effnet_lite0']:.3f}"] if "l1" in r else ["-", "-"]
        cells += [f"{r['checkerboard']:.2f}", f"{r['stripe']:.2f}", f"{r['sharpness']['median']:.4f}"]
        print(f"| {name} | " + " | ".join(cells) + " |")
    if args.sheet:
        contact_sheet(labels, [(Path(n).name, ims) for n, ims in outputs if n != "constant mean colour"], args.sheet)
        print(f"contact sheet: {args.sheet}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
