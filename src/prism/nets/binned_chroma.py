"""Colorization as classification over a grid of ab bins (Zhang, Isola, Efros 2016, "Colorful
Image Colorization"): any backbone predicts per-pixel logits over K x K chroma bins; training
uses a cross-entropy against a soft (bilinear) encoding of the true ab, with rare colours
up-weighted by the inverse of a smoothed colour prior; inference decodes the "annealed mean"
(softmax at temperature T, then the expected bin centre). Regression to the mean of a
multi-modal colour distribution gives gray-brown; the annealed mean keeps the vivid mode.

Inputs and outputs use the task's normalized ab in [-1, 1], so the module is a drop-in for a
2-channel generator: `forward(L)` returns ab; `forward(L, return_logits=True)` the logits.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from prism.registry import NETWORKS, build_network


@NETWORKS.register("binned_chroma")
class BinnedChroma(nn.Module):
    def __init__(self, backbone: dict, features: int = 16, grid: int = 16, temperature: float = 0.38):
        super().__init__()
        if grid < 2:
            raise ValueError(f"binned_chroma: grid must be at least 2, got {grid}")
        self.backbone = build_network({**backbone, "out_channels": features})
        self.head = nn.Conv2d(features, grid * grid, 1)
        self.grid, self.temperature = grid, temperature
        self.size_multiple = getattr(self.backbone, "size_multiple", 1)
        axis = -1 + (2 * torch.arange(grid, dtype=torch.float32) + 1) / grid
        a, b = torch.meshgrid(axis, axis, indexing="ij")  # bin q = i * grid + j  <->  (a_i, b_j)
        self.register_buffer("centers", torch.stack([a.flatten(), b.flatten()], 1), persistent=False)

    def forward(self, x: torch.Tensor, return_logits: bool = False) -> torch.Tensor:
        logits = self.head(self.backbone(x))
        return logits if return_logits else self.decode(logits)

    def decode(self, logits: torch.Tensor) -> torch.Tensor:
        """Annealed mean: T = 1 is the mean (desaturated), T -> 0 the mode (noisy); 0.38 as the paper."""
        p = torch.softmax(logits.float() / self.temperature, dim=1)
        return torch.einsum("bqhw,qc->bchw", p, self.centers)

    # --- training ------------------------------------------------------------------------------
    def _coords(self, ab: torch.Tensor) -> torch.Tensor:
        """ab in [-1, 1] -> continuous bin coordinates in [0, grid - 1]."""
        return ((ab.clamp(-1, 1) + 1) * self.grid / 2 - 0.5).clamp(0, self.grid - 1)

    def nearest_bins(self, ab: torch.Tensor) -> torch.Tensor:
        u = self._coords(ab).round().long()
        return u[:, 0] * self.grid + u[:, 1]

    def bin_counts(self, ab: torch.Tensor) -> torch.Tensor:
        return torch.bincount(self.nearest_bins(ab).flatten(), minlength=self.grid ** 2).float()

    def soft_encode(self, ab: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B,2,H,W) ab -> the 4 surrounding bins (B,4,H,W) and their bilinear weights (sum 1)."""
        u = self._coords(ab)
        i0 = u.floor().clamp(max=self.grid - 2)
        f = u - i0
        i0 = i0.long()
        idx, wts = [], []
        for di in (0, 1):
            for dj in (0, 1):
                idx.append((i0[:, 0] + di) * self.grid + i0[:, 1] + dj)
                wa = f[:, 0] if di else 1 - f[:, 0]
                wb = f[:, 1] if dj else 1 - f[:, 1]
                wts.append(wa * wb)
        return torch.stack(idx, 1), torch.stack(wts, 1)

    def loss(self, logits: torch.Tensor, ab: torch.Tensor, class_weights: torch.Tensor | None = None) -> torch.Tensor:
        """Soft-encoded cross-entropy, each pixel weighted by its nearest bin's rebalancing weight."""
        idx, wts = self.soft_encode(ab)
        logp = F.log_softmax(logits.float(), dim=1).gather(1, idx)
        ce = -(wts * logp).sum(1)
        if class_weights is not None:
            ce = ce * class_weights.to(ce.device)[self.nearest_bins(ab)]
        return ce.mean()


def rebalance_weights(counts: torch.Tensor, grid: int, mix: float = 0.5) -> torch.Tensor:
    """Zhang et al.'s class rebalancing: w proportional to ((1 - mix) * smoothed prior + mix / Q)^-1,
    normalized so the expected weight under the prior is 1. mix = 1 -> no rebalancing."""
    Q = grid * grid
    p = counts.float() / counts.sum().clamp(min=1)
    kernel = torch.tensor([1.0, 2.0, 1.0], device=p.device)
    kernel = (kernel[:, None] * kernel[None, :] / 16)[None, None]
    p = F.conv2d(p.view(1, 1, grid, grid), kernel, padding=1).flatten()  # smoothing, as the paper's Gaussian
    p = p / p.sum().clamp(min=1e-12)
    w = 1.0 / ((1 - mix) * p + mix / Q)
    return w / (p * w).sum().clamp(min=1e-12)
