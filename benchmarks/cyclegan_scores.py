"""CycleGAN photo -> Monet scores on photos kept out of training, for one or more models beside the
untranslated photos: checkerboard and stripe indices (prism.artifacts, medians over images) and a
"Monet-ness" share: a linear head on ImageNet EfficientNet-Lite0 features (prism.fid.effnet_features)
trained on the shared Monet paintings against 200 of the preset's reserved photos
(data.reserve: never seen by the translator), asked which translated photos it calls Monet.
A second judge, the same linear head on pixel statistics (Lab colour moments and histograms,
gradient, Laplacian and stroke-orientation statistics at three scales), shares nothing with the
EfficientNet: a translator trained against a discriminator on that backbone
(configs/cyclegan/cpu-effd.yaml) could please the first judge without looking painted.
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


def pixel_statistics(images) -> torch.Tensor:
    """(N, 75) hand-made features of uint8 RGB images: colour (Lab moments, chroma, 8-bin histograms
    of L*, a*, b*) and texture at 1, 1/2 and 1/4 scale (gradient magnitude percentiles, Laplacian
    energy, and structure-tensor coherence: how much the local gradients share one direction, i.e.
    strokes)."""
    import kornia
    import torch.nn.functional as F
    rows = []
    for im in images:
        x = chw(np.asarray(im))[None]
        x = F.interpolate(x, size=(256, 256), mode="bilinear", antialias=True, align_corners=False)
        lab = kornia.color.rgb_to_lab(x)[0]
        L, a, b = lab
        chroma = (a.square() + b.square()).sqrt()
        f = []
        for ch, lo, hi in ((L, 0, 100), (a, -60, 60), (b, -60, 60)):
            f += [ch.mean(), ch.std(), *torch.quantile(ch.flatten(), torch.tensor([0.05, 0.5, 0.95]))]
            f += list(torch.histc(ch, 8, lo, hi) / ch.numel())
        f += [chroma.mean(), chroma.std()]
        lum = L[None, None] / 100
        for _ in range(3):
            gy, gx = kornia.filters.spatial_gradient(lum)[0, 0]
            mag = (gx.square() + gy.square()).sqrt()
            lap = kornia.filters.laplacian(lum, 3)
            jxx, jyy, jxy = (kornia.filters.box_blur(t[None, None], (7, 7)) for t in (gx * gx, gy * gy, gx * gy))
            coherence = ((jxx - jyy).square() + 4 * jxy.square()).sqrt() / (jxx + jyy + 1e-6)
            f += [*torch.quantile(mag.flatten(), torch.tensor([0.25, 0.5, 0.75, 0.95])), lap.square().mean().sqrt(),
                  coherence.mean(), (mag > 0.05).float().mean()]
            lum = F.avg_pool2d(lum, 2)
        rows.append(torch.stack([torch.as_tensor(v, dtype=torch.float32) for v in f]))
    return torch.stack(rows)


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


def read_rgb(files) -> list[np.ndarray]:
    return [(read_image(f).rgb * 255).round().astype(np.uint8) for f in files]


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
    px = torch.cat([pixel_statistics(read_rgb(monets)), pixel_statistics(read_rgb(head_photos))])
    print(f"pixel-statistics judge: same images, 5-fold accuracy {cross_validated_accuracy(px, y):.3f}")
    is_monet_px = fit_linear_head(px, y)

    rows = []
    for label, files in ((f"held-out photos ({len(held_out)})", held_out), (f"reserved photos ({len(scored)})", scored)):
        photos = read_rgb(files)
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
            shares = [float(is_monet(feats(arrays)).float().mean()),
                      float(is_monet_px(pixel_statistics(arrays)).float().mean())]
            rows.append((label, name, ind["checkerboard"], *by_period, ind["stripe"], *shares))
    print("| photos | images | checkerboard | period 2 | period 4 | period 8 | stripe | called Monet (EffNet) "
          "| called Monet (pixel statistics) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for label, name, *numbers in rows:
        print(f"| {label} | {name} | " + " | ".join(f"{v:.2f}" for v in numbers) + " |")


if __name__ == "__main__":
    main()
