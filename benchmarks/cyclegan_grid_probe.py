"""Where does a CycleGAN generator's grid come from? Three measurements on the held-out and reserved
photos of a preset (never trained on), for a saved photo -> Monet model:

1. Checkerboard index per grid period (prism.artifacts) of the translations, beside the photos',
   an untrained generator of the same layout's, and the first 60 images of each training domain
   (does the target domain carry a grid of its own, a canvas or JPEG pattern to copy?).
2. The same weights run with `antialias` and `blur_bottleneck` switched on at inference (blur
   before each stride-2 convolution, after each upsampling stage's ReLU and on the residual blocks'
   output; no retraining): if the grid falls, the resampling stages draw it.
3. Steganography check (Chu et al. 2017, "CycleGAN, a master of steganography"): the cycle error
   A -> B -> A when the intermediate image is shifted by 1, 2 or 4 px, blurred, or given faint
   noise. If the grid carried hidden detail for the way back, these would raise the error.

    .venv/bin/python benchmarks/cyclegan_grid_probe.py models/cyclegan-monet-cpu [--config configs/cyclegan/cpu.yaml]
"""
from __future__ import annotations

import argparse

import numpy as np
import torch
import torch.nn.functional as F

import prism
from prism.artifacts import checkerboard_index
from prism.data.images import list_images, read_image
from prism.nets.common import init_gan_weights
from prism.nets.common import binomial_blur
from prism.nets.resnet_generator import ResnetGenerator
from prism.tasks import resolve_config
from prism.tasks.cyclegan import CycleGANTask

PERIODS = (2, 4, 8)


def per_period(images: list[torch.Tensor]) -> list[float]:
    return [float(np.median([checkerboard_index(im, (p,)) for im in images])) for p in PERIODS]


def with_antialias(G: torch.nn.Module, spec: dict) -> ResnetGenerator:
    options = {k: v for k, v in spec.items() if k not in ("arch", "antialias", "blur_bottleneck")}
    net = ResnetGenerator(**options, antialias=True, blur_bottleneck=True).eval()
    net.load_state_dict(G.state_dict())
    return net


def main():
    p = argparse.ArgumentParser()
    p.add_argument("model")
    p.add_argument("--config", default="configs/cyclegan/cpu.yaml")
    p.add_argument("--count", type=int, default=32, help="photos scored (held-out first, then reserved)")
    args = p.parse_args()
    torch.manual_seed(0)
    task = CycleGANTask(resolve_config(args.config, []))
    _, (held_out, _), (reserved, _) = task.split_files()
    files = (held_out + reserved[::3])[:args.count]
    photos = [(read_image(f).rgb * 255).round().astype(np.uint8) for f in files]
    model = prism.load_model(args.model)
    G_AB, G_BA = (model.generators[d].float().eval() for d in ("AtoB", "BtoA"))
    spec = model.card["nets"]["G_AB"]

    def tensors(images):
        return [torch.from_numpy(np.array(im)).permute(2, 0, 1).float() / 255 for im in images]

    print(f"{len(photos)} photos; checkerboard index per period ({', '.join(map(str, PERIODS))} px), medians")
    print(f"| images | " + " | ".join(f"period {p}" for p in PERIODS) + " |")
    print("|---|" + "---|" * len(PERIODS))
    rows = [("input photos", tensors(photos))]
    with torch.no_grad():
        rows.append(("translations", tensors(model.translate_batch(photos, "AtoB", 4))))
        if spec.get("arch") == "resnet_generator" and not (spec.get("antialias") and spec.get("blur_bottleneck")):
            model.generators["AtoB"] = with_antialias(G_AB, spec)
            rows.append(("same weights, antialias + blur_bottleneck at inference",
                         tensors(model.translate_batch(photos, "AtoB", 4))))
            model.generators["AtoB"] = G_AB
        if spec.get("arch") == "resnet_generator":
            torch.manual_seed(1)
            untrained = ResnetGenerator(**{k: v for k, v in spec.items() if k != "arch"})
            init_gan_weights(untrained)
            model.generators["AtoB"] = untrained.eval()
            rows.append(("untrained generator, same layout", tensors(model.translate_batch(photos, "AtoB", 4))))
            model.generators["AtoB"] = G_AB
    for domain in ("A", "B"):
        files = list_images(task.cfg["data"][domain])[:60]
        rows.append((f"training domain {domain}, first {len(files)}", [torch.from_numpy(read_image(f).rgb).permute(2, 0, 1) for f in files]))
    for name, images in rows:
        print(f"| {name} | " + " | ".join(f"{v:.2f}" for v in per_period(images)) + " |")

    same_size = [x for x in photos if x.shape == photos[0].shape]
    x = torch.stack([torch.from_numpy(a).permute(2, 0, 1).float() / 127.5 - 1 for a in same_size])
    perturbations = {
        "none": lambda f: (f, 0), "shift 1 px": lambda f: (f.roll((1, 1), (2, 3)), 1),
        "shift 2 px": lambda f: (f.roll((2, 2), (2, 3)), 2), "shift 4 px": lambda f: (f.roll((4, 4), (2, 3)), 4),
        "binomial blur": lambda f: (binomial_blur(f), 0), "noise sigma 0.01": lambda f: (f + 0.02 * torch.randn_like(f), 0)}
    print(f"\nCycle error A -> B -> A on {len(x)} photos, mean |difference| in 0..1 units (8-px border left out):")
    print("| intermediate image | cycle L1 |\n|---|---|")
    with torch.no_grad():
        fake = torch.cat([G_AB(x[i:i + 4]) for i in range(0, len(x), 4)])
        for name, perturb in perturbations.items():
            moved, shift = perturb(fake)
            back = torch.cat([G_BA(moved[i:i + 4]) for i in range(0, len(x), 4)]).roll((-shift, -shift), (2, 3))
            print(f"| {name} | {float(F.l1_loss(back, x, reduction='none')[..., 8:-8, 8:-8].mean()) / 2:.4f} |")


if __name__ == "__main__":
    main()
