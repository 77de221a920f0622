"""The OASIS generator (Sushko et al. 2021): a SPADE residual decoder (Park et al. 2019) fed with
3D noise.

The semantic input (one-hot class map, optionally plus an instance-boundary channel) is
concatenated with a noise tensor `noise` of shape (B, z_dim, H, W). Every SPADE layer normalises its
features without learned affine parameters, then modulates them per pixel with a scale and shift
predicted from that semantic+noise map, so the layout survives normalisation at every scale. The
noise is "3D" because it is a map, not a vector: giving one class's region a different noise
draw (OASIS's class-wise resampling) changes the appearance of that region only, up to the
network's receptive field (see `receptive_radius`).

Sizes: the first layer runs at H/2**(n_blocks-1), so inputs must be divisible by `size_multiple`.
The paper uses n_blocks=6 (8x16 at 256x512) and width 64 (1024 channels at the lowest scale);
`width` scales every layer, for CPU training.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.parametrizations import spectral_norm

from prism.nets.common import check_size
from prism.registry import NETWORKS


def param_free_norm(kind: str, channels: int) -> nn.Module:
    """batch: the paper's; its running statistics are what inference uses, so an EMA copy needs
    them re-estimated (prism.tasks.oasis does). instance: per-image statistics, no state, but
    global over the image, so a local change reaches every pixel. none: modulation only."""
    if kind == "batch":
        return nn.BatchNorm2d(channels, affine=False)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=False)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown SPADE norm '{kind}'; use batch, instance or none")


class SPADE(nn.Module):
    """norm(x) * (1 + gamma(cond)) + beta(cond), cond resized (nearest) to x's size."""

    def __init__(self, channels: int, cond_channels: int, hidden: int, norm: str):
        super().__init__()
        self.norm = param_free_norm(norm, channels)
        self.shared = nn.Sequential(nn.Conv2d(cond_channels, hidden, 3, padding=1), nn.ReLU())
        self.gamma = nn.Conv2d(hidden, channels, 3, padding=1)
        self.beta = nn.Conv2d(hidden, channels, 3, padding=1)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        if cond.shape[-2:] != x.shape[-2:]:
            cond = F.interpolate(cond, size=x.shape[-2:], mode="nearest")
        h = self.shared(cond)
        return self.norm(x) * (1 + self.gamma(h)) + self.beta(h)


class SPADEResBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, cond_channels: int, hidden: int, norm: str, sn: bool):
        super().__init__()
        wrap = spectral_norm if sn else (lambda m: m)
        middle = min(c_in, c_out)
        self.norm_0 = SPADE(c_in, cond_channels, hidden, norm)
        self.conv_0 = wrap(nn.Conv2d(c_in, middle, 3, padding=1))
        self.norm_1 = SPADE(middle, cond_channels, hidden, norm)
        self.conv_1 = wrap(nn.Conv2d(middle, c_out, 3, padding=1))
        self.learned_shortcut = c_in != c_out
        if self.learned_shortcut:
            self.norm_s = SPADE(c_in, cond_channels, hidden, norm)
            self.conv_s = wrap(nn.Conv2d(c_in, c_out, 1, bias=False))

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        shortcut = self.conv_s(self.norm_s(x, cond)) if self.learned_shortcut else x
        dx = self.conv_0(F.leaky_relu(self.norm_0(x, cond), 0.2))
        dx = self.conv_1(F.leaky_relu(self.norm_1(dx, cond), 0.2))
        return shortcut + dx


@NETWORKS.register("oasis_generator")
class OASISGenerator(nn.Module):
    """label_channels: classes (+1 with an instance-boundary channel). forward(semantic, noise)
    with semantic (B, label_channels, H, W) and noise (B, z_dim, H, W) -> (B, 3, H, W) in [-1, 1]."""

    def __init__(self, label_channels: int, z_dim: int = 64, width: int = 64, n_blocks: int = 6,
                 spade_hidden: int = 128, norm: str = "batch", spectral_norm: bool = True,
                 noise: str = "vector", label_resize: str = "nearest", upsample: str = "nearest"):
        super().__init__()
        if n_blocks < 1:
            raise ValueError(f"n_blocks must be at least 1, got {n_blocks}")
        if noise not in ("vector", "pixel") or label_resize not in ("nearest", "area") \
                or upsample not in ("nearest", "bilinear"):
            raise ValueError(f"noise must be 'vector' or 'pixel', label_resize 'nearest' or 'area' and upsample "
                             f"'nearest' or 'bilinear'; got {noise!r}, {label_resize!r}, {upsample!r}")
        self.label_channels, self.z_dim, self.n_blocks = label_channels, z_dim, n_blocks
        self.noise, self.label_resize, self.upsample = noise, label_resize, upsample
        self.size_multiple = 2 ** (n_blocks - 1)
        # the paper's [16, 16, 16, 8, 4, 2, 1] x width for 6 blocks: at most 16x, halving towards the output
        channels = [width * min(16, 2 ** (n_blocks - i)) for i in range(n_blocks + 1)]
        cond = label_channels + z_dim
        self.fc = nn.Conv2d(cond, channels[0], 3, padding=1)
        self.body = nn.ModuleList(SPADEResBlock(channels[i], channels[i + 1], cond, spade_hidden, norm, spectral_norm)
                                  for i in range(n_blocks))
        self.conv_img = nn.Conv2d(channels[-1], 3, 3, padding=1)
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():  # OASIS: Xavier normal, gain 0.02; spectral norm then fixes each conv's scale
            if isinstance(m, nn.Conv2d):
                weight = m.parametrizations.weight.original if hasattr(m, "parametrizations") else m.weight
                nn.init.xavier_normal_(weight, gain=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, semantic: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        check_size(self, semantic.shape[-2], semantic.shape[-1])
        if semantic.shape[1] != self.label_channels:
            raise ValueError(f"OASISGenerator expects {self.label_channels} label channels, got {semantic.shape[1]}")
        if noise is None:
            b, _, h, w = semantic.shape
            noise = self.draw_noise(b, h, w).to(semantic)
        full = semantic.shape[-2:]
        conds = [self._condition(semantic, noise, (full[0] // 2 ** k, full[1] // 2 ** k))
                 for k in range(self.n_blocks - 1, -1, -1)]  # coarsest first: one resize per scale
        x = self.fc(conds[0])
        for i, block in enumerate(self.body):
            x = block(x, conds[i])
            if i < self.n_blocks - 1:
                x = self._upsample(x)
        return torch.tanh(self.conv_img(F.leaky_relu(x, 0.2)))

    def _upsample(self, x: torch.Tensor) -> torch.Tensor:
        """x2 between blocks. 'nearest' (the paper's) copies each pixel into a 2x2 block, and a
        small G learnt to draw texture from that lattice: windows in rows, tiled road and the
        column stripes (with the CamVid model's weights, bilinear at inference alone takes the
        stripe index from 1.78 to 1.24, the real photos' 1.26, and the windows go with it:
        docs/oasis.md). 'bilinear' leaves no lattice, so texture must come from noise and labels."""
        if self.upsample == "bilinear":
            return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        return F.interpolate(x, scale_factor=2, mode="nearest")

    def _condition(self, semantic: torch.Tensor, noise: torch.Tensor, size) -> torch.Tensor:
        """Noise + labels at one scale. Noise is subsampled (nearest keeps its per-pixel spread);
        labels are `label_resize`d: 'area' gives class shares per cell, so a slanted border stays
        a smooth ramp instead of a staircase whose steps the convolutions smear into streaks."""
        if semantic.shape[-2:] != size:
            noise = F.interpolate(noise, size=size, mode="nearest")
            semantic = F.interpolate(semantic, size=size, mode=self.label_resize)
        return torch.cat([noise, semantic], 1)

    def draw_noise(self, batch: int, h: int, w: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """(batch, z_dim, h, w) on the CPU. 'vector': one draw per image, the same at every pixel
        (the OASIS code's). 'pixel': an independent draw per pixel, so the inside of a uniform
        region has something to make texture from besides its borders and the zero padding
        (without it a small G paints stripes that start at those edges: docs/oasis.md)."""
        if self.noise == "pixel":
            return torch.randn(batch, self.z_dim, h, w, generator=generator)
        return torch.randn(batch, self.z_dim, 1, 1, generator=generator).expand(-1, -1, h, w)

    def receptive_radius(self) -> int:
        """How far (Chebyshev distance, output pixels) a change of the input can reach when every
        norm is pointwise (batch norm in eval mode, or none); beyond it outputs are bit-identical.

        Block i runs at scale s_i = 2**(n_blocks-1-i) output pixels per pixel. Nearest resizing
        reads one input pixel per block pixel, so a change enters the coarsest scale within
        s_0 - 1 pixels; there at most 4 chained 3x3 convs act on it (SPADE's shared and gamma/beta
        convs, then conv_0 and conv_1), each spreading it by s_0; every later block adds conv_0
        and conv_1 (2 s_i; SPADE's convs there only start shorter paths); nearest upsampling
        spreads nothing and the output conv adds 1: 5 s_0 + 2 (s_1 + ... + s_last) in all. Bilinear
        upsampling after block i reads the neighbouring pixel too: s_i more each time (2 s_0 - 2 in all)."""
        coarse = 2 ** (self.n_blocks - 1)
        interpolation = 2 * coarse - 2 if self.upsample == "bilinear" else 0
        return 5 * coarse + 2 * (coarse - 1) + interpolation
