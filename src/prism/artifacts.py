"""Artifact indices of generated images, from the luminance power spectrum (Hann-windowed, so the
image borders do not leak a cross into it):

- checkerboard index: power at the periodic-grid frequencies of periods 2, 4 and 8 px (along
  each axis and both together: what transposed-convolution upsampling leaves) over the median
  power just around each of them;
- stripe index: power on the two frequency axes (structure along one axis only: column or row
  stripes) over the power of the rows / columns just beside them.

Both are ~1-3 on photos and grow with a grid or stripes; compare a generator's outputs with real
photos of the same domain (benchmarks/artifact_indices.py), not with a fixed number.
"""
from __future__ import annotations

import numpy as np
import torch

PERIODS = (2, 4, 8)


def luminance_spectrum(rgb: torch.Tensor) -> torch.Tensor:
    """(3,H,W) or (H,W) in [0,1] -> (H,W) power spectrum of the windowed luminance, DC centred."""
    y = rgb if rgb.ndim == 2 else 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]
    y = y.double() - y.double().mean()
    h, w = y.shape
    window = torch.hann_window(h, periodic=False, dtype=torch.float64)[:, None] * \
        torch.hann_window(w, periodic=False, dtype=torch.float64)[None, :]
    return torch.fft.fftshift(torch.fft.fft2(y * window).abs() ** 2)


def _ring_median(power: torch.Tensor, cy: int, cx: int, inner: int = 1, outer: int = 4) -> float:
    """Median power in the (2*outer+1)^2 box around (cy, cx) without its (2*inner+1)^2 core."""
    h, w = power.shape
    ys = torch.arange(cy - outer, cy + outer + 1) % h
    xs = torch.arange(cx - outer, cx + outer + 1) % w
    box = power[ys][:, xs]
    core = (torch.arange(-outer, outer + 1).abs() <= inner)
    keep = ~(core[:, None] & core[None, :])
    return float(box[keep].median())


def checkerboard_index(rgb: torch.Tensor, periods=PERIODS) -> float:
    """Mean over the grid frequencies of (peak power, 3x3 max) / (median power around it)."""
    power = luminance_spectrum(rgb)
    h, w = power.shape
    cy, cx = h // 2, w // 2
    ratios = []
    for p in periods:
        fy, fx = round(h / p), round(w / p)
        for dy, dx in ((0, fx), (fy, 0), (fy, fx), (fy, -fx)):
            if (dy and p * 2 > h) or (dx and p * 2 > w):
                continue
            y, x = (cy + dy) % h, (cx + dx) % w
            peak = float(power[torch.arange(y - 1, y + 2) % h][:, torch.arange(x - 1, x + 2) % w].max())
            ratios.append(peak / max(_ring_median(power, y, x), 1e-30))
    return float(np.mean(ratios)) if ratios else float("nan")


def stripe_index(rgb: torch.Tensor, low: int = 3, offset: tuple[int, int] = (2, 6)) -> float:
    """Median over frequencies of (power on a frequency axis) / (mean power of the rows or columns
    offset[0]..offset[1] beside it, at the same frequency), leaving out the lowest `low`
    frequencies; the larger of the two axes (column stripes or row stripes). A median of per-bin
    ratios weighs every frequency alike, so weak stripes show even where the photo's own power is
    far larger at low frequencies."""
    power = luminance_spectrum(rgb)
    h, w = power.shape
    cy, cx = h // 2, w // 2
    xs = torch.cat([torch.arange(0, cx - low), torch.arange(cx + low + 1, w)])
    ys = torch.cat([torch.arange(0, cy - low), torch.arange(cy + low + 1, h)])
    near = range(offset[0], offset[1] + 1)
    # structure that varies along x only (vertical stripes) sits on the row fy = 0
    beside_x = torch.stack([power[(cy + s * d) % h, xs] for d in near for s in (1, -1)]).mean(0)
    beside_y = torch.stack([power[ys, (cx + s * d) % w] for d in near for s in (1, -1)]).mean(0)
    along_x = float((power[cy, xs] / beside_x.clamp_min(1e-30)).median())
    along_y = float((power[ys, cx] / beside_y.clamp_min(1e-30)).median())
    return max(along_x, along_y)


def artifact_indices(images) -> dict[str, float]:
    """Median checkerboard and stripe index over (3,H,W) images (medians: a few odd images must
    not rule the figure)."""
    cb = [checkerboard_index(im) for im in images]
    st = [stripe_index(im) for im in images]
    return {"checkerboard": float(np.median(cb)), "stripe": float(np.median(st)), "count": len(cb)}
