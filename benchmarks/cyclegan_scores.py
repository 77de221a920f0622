"""CycleGAN photo -> Monet scores on photos kept out of training, for one or more models beside the
untranslated photos: checkerboard and stripe indices (prism.artifacts, medians over images) and a
"Monet-ness" share: a linear head on ImageNet EfficientNet-Lite0 features (prism.fid.effnet_features)
trained on the shared Monet paintings against 200 of the preset's reserved photos
(data.reserve: never seen by the translator), asked which translated photos it calls Monet.
The other 100 reserved photos and the 8 held-out ones are the ones scored. The head's own 5-fold
accuracy is printed first, so a share can be read against how well the head tells the domains apart.

    .venv/bin/python benchmarks/cyclegan_scores.py MODEL [MODEL ...] [--config configs/cyclegan/cpu.yaml] \
        [--sheet docs/cyclegan-contact-sheet.png]

--sheet draws the held-out photos: input | each model, and a last row of 64x64 sky crops at 3x.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

import prism
from prism.artifacts import artifact_indices, checkerboard_index
from prism.data.images import list_images, read_image
from prism.fid.effnet_features import EfficientNetLite0Features
from prism.fid.metrics import extract_features
from prism.tasks import resolve_config
from prism.tasks.cyclegan import CycleGANTask


def fit_linear_head(x: torch.Tensor, y: torch.Tensor, weight_decay: float = 1e-2):
    """Logistic regression on standardised features (full-batch L-BFGS, classes weighted to balance)."""
    mean, std = x.mean(0), x.std(0) + 1e-6
    z = (x - mean) / std
    w = torch.zeros(x.shape[1], requires_grad=True)
    b = torch.zeros((), requires_grad=True)
    pos = y.float().mean()
    sample_w = torch.where(y > 0, 0.5 / pos, 0.5 / (1 - pos))
    opt = torch.optim.LBFGS([w, b], max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = (torch.nn.functional.binary_cross_entropy_with_logits(z @ w + b, y.float(), weight=sample_w)
                + weight_decay * w.square().sum())
        loss.backward()
        return loss
    opt.step(closure)
    w, b = w.detach(), b.detach()
    return lambda f: ((f - mean) / std @ w + b) > 0


def cross_validated_accuracy(x, y, folds: int = 5) -> float:
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    correct = 0
    for k in range(folds):
        test = order[k::folds]
        train = torch.cat([order[j::folds] for j in range(folds) if j != k])
        predict = fit_linear_head(x[train], y[train])
        correct += int((predict(x[test]) == (y[test] > 0)).sum())
    return correct / len(x)


def chw(image) -> torch.Tensor:
    arr = np.asarray(image, dtype=np.float32)
    return torch.from_numpy(arr / 255.0 if arr.max() > 1.5 else arr).permute(2, 0, 1)


def contact_sheet(columns: list[tuple[str, list[np.ndarray]]], path: str, crop=(8, 96, 72, 160)) -> None:
    """One row per held-out photo (256 px tiles), one column per source; the last row enlarges a
    64x64 window of the first photo 3x (nearest), where a grid or streaks show at a glance."""
    from PIL import Image, ImageDraw
    tile, top = 256, 18
    n = len(columns[0][1])
    sheet = Image.new("RGB", (tile * len(columns), top + tile * (n + 1)), "white")
    draw = ImageDraw.Draw(sheet)
    y0, x0, y1, x1 = crop
    for j, (name, images) in enumerate(columns):
        draw.text((j * tile + 4, 3), Path(name).name, fill="black")
        for i, im in enumerate(images):
            sheet.paste(Image.fromarray(np.asarray(im)).resize((tile, tile), Image.BICUBIC), (j * tile, top + i * tile))
        window = Image.fromarray(np.asarray(images[0])[y0:y1, x0:x1]).resize((192, 192), Image.NEAREST)
        sheet.paste(window, (j * tile + 32, top + n * tile + 32))
    sheet.save(path)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("models", nargs="+")
    p.add_argument("--config", default="configs/cyclegan/cpu.yaml")
    p.add_argument("--sheet", help="write a contact sheet of the held-out photos here")
    args = p.parse_args()
    task = CycleGANTask(resolve_config(args.config, []))
    _, (held_out, _), (reserved, _) = task.split_files()
    scored = reserved[::3]
    head_photos = [f for i, f in enumerate(reserved) if i % 3]
    monets = list_images(task.cfg["data"]["B"])
    net = EfficientNetLite0Features()

    def feats(images):
        return extract_features(images, net, batch_size=16).features

    x = torch.cat([feats(monets), feats(head_photos)])
    y = torch.cat([torch.ones(len(monets)), torch.zeros(len(head_photos))])
    print(f"Monet-ness head: {len(monets)} paintings vs {len(head_photos)} reserved photos, "
          f"5-fold accuracy {cross_validated_accuracy(x, y):.3f}")
    is_monet = fit_linear_head(x, y)

    rows = []
    for label, files in ((f"held-out photos ({len(held_out)})", held_out), (f"reserved photos ({len(scored)})", scored)):
        photos = [(read_image(f).rgb * 255).round().astype(np.uint8) for f in files]
        sets = [("input photos", photos)]
        for m in args.models:
            sets.append((m, prism.load_model(m).translate_batch(photos, "AtoB", 8)))
        if args.sheet and files is held_out:
            contact_sheet(sets, args.sheet)
        for name, images in sets:
            arrays = [np.asarray(im) for im in images]
            tensors = [chw(a) for a in arrays]
            ind = artifact_indices(tensors)
            # per grid period: a generator's own grid sits at the period of its resampling path
            by_period = [float(np.median([checkerboard_index(t, (p,)) for t in tensors])) for p in (2, 4, 8)]
            share = float(is_monet(feats(arrays)).float().mean())
            rows.append((label, name, ind["checkerboard"], *by_period, ind["stripe"], share))
    print("| photos | images | checkerboard | period 2 | period 4 | period 8 | stripe | called Monet |")
    print("|---|---|---|---|---|---|---|---|")
    for label, name, *numbers, share in rows:
        print(f"| {label} | {name} | " + " | ".join(f"{v:.2f}" for v in numbers) + f" | {share:.2f} |")


if __name__ == "__main__":
    main()
