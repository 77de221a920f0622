"""Droplet probe for a translator with instance-norm generators (CycleGAN): how extreme are the
spikes at the instance norms' inputs, and do they sit where the output has a blob?

For each of N images per direction: the largest |z| (per channel standardised over the map) at
each InstanceNorm2d input, the share of positions beyond 6, and the output's mean absolute
deviation from its 31-px local mean at the 20 positions with the strongest spikes (all layers
upsampled to the output size and summed) against 200 random positions.

    .venv/bin/python benchmarks/instance_norm_spikes.py models/cyclegan-monet-cpu [--images 12]
"""
from __future__ import annotations

import argparse

import numpy as np
import torch
import torch.nn.functional as F

import prism
from prism.data.images import list_images, read_image

SOURCES = {"AtoB": "../shared/data/unpaired/monet2photo/photo", "BtoA": "../shared/data/unpaired/monet2photo/monet"}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("model")
    p.add_argument("--images", type=int, default=12)
    args = p.parse_args()
    translator = prism.load_model(args.model)
    rng = np.random.default_rng(0)
    print("| direction | images | largest spike (median over images) | positions beyond 6 (max) "
          "| local contrast at spikes | at random positions |")
    print("|---|---|---|---|---|---|")
    for direction, folder in SOURCES.items():
        G = translator.generators[direction].float()
        maps, largest, beyond = [], [], []

        def hook(module, inputs, output):
            x = inputs[0][0]
            z = ((x - x.mean((1, 2), keepdim=True)) / (x.std((1, 2), keepdim=True) + 1e-5)).abs()
            maps.append(z.amax(0))
            largest[-1] = max(largest[-1], float(z.amax()))
            beyond[-1] = max(beyond[-1], float((z > 6).float().mean()))

        hooks = [m.register_forward_hook(hook) for m in G.modules() if isinstance(m, torch.nn.InstanceNorm2d)]
        at_spikes, at_random = [], []
        for f in list_images(folder)[:args.images]:
            x = torch.from_numpy(read_image(f).rgb).permute(2, 0, 1)[None].float() * 2 - 1
            maps.clear()
            largest.append(0.0)
            beyond.append(0.0)
            with torch.no_grad():
                lum = G(x)[0].mean(0)
            local = F.avg_pool2d(lum[None, None], 31, 1, 15, count_include_pad=False)[0, 0]
            contrast = (lum - local).abs().flatten()
            spikes = sum(F.interpolate(m[None, None], size=lum.shape, mode="nearest")[0, 0] for m in maps)
            at_spikes.append(float(contrast[spikes.flatten().topk(20).indices].mean()))
            at_random.append(float(contrast[torch.from_numpy(rng.integers(0, len(contrast), 200))].mean()))
        for h in hooks:
            h.remove()
        print(f"| {direction} | {len(at_spikes)} | {np.median(largest):.1f} | {max(beyond):.4f} "
              f"| {np.mean(at_spikes):.3f} | {np.mean(at_random):.3f} |")


if __name__ == "__main__":
    main()
