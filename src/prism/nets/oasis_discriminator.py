"""The OASIS discriminator (Sushko et al. 2021): a U-Net that segments its input into the N
semantic classes plus one "fake" class, per pixel.

Instead of one real/fake score per patch, D must say for every pixel which class it shows, or
that it is generated. Its feedback to the generator is therefore spatially and semantically
aligned with the label map, which is what lets OASIS drop the VGG perceptual loss SPADE needs.
Residual blocks with spectral norm: n_blocks stride-2 encoder blocks (channels 2w, 2w, 4w, 4w,
8w, 8w for the paper's n_blocks=6, w=64), a mirrored decoder with skip connections, and a 1x1
conv to N+1 logits at the input resolution.
"""
from __future__ import annotations

import torch
import torch.nn as nn
from torch.nn.utils.parametrizations import spectral_norm

from prism.nets.common import check_size
from prism.registry import NETWORKS


class ResBlockD(nn.Module):
    """direction -1: average-pool down by 2 at the end; +1: upsample by 2 at the start. The
    first block takes raw pixels: no activation before its first conv."""

    def __init__(self, c_in: int, c_out: int, direction: int, first: bool = False, sn: bool = True):
        super().__init__()
        wrap = spectral_norm if sn else (lambda m: m)
        self.direction, self.first = direction, first
        up = [nn.Upsample(scale_factor=2)] if direction > 0 else []
        act = [] if first else [nn.LeakyReLU(0.2)]
        self.conv1 = nn.Sequential(*act, *up, wrap(nn.Conv2d(c_in, c_out, 3, 1, 1)))
        self.conv2 = nn.Sequential(nn.LeakyReLU(0.2), wrap(nn.Conv2d(c_out, c_out, 3, 1, 1)))
        self.conv_s = wrap(nn.Conv2d(c_in, c_out, 1, 1, 0)) if c_in != c_out else nn.Identity()
        self.sampling = (nn.Upsample(scale_factor=2) if direction > 0 else
                         nn.AvgPool2d(2) if direction < 0 else nn.Identity())

    def shortcut(self, x: torch.Tensor) -> torch.Tensor:
        if self.direction > 0:
            return self.conv_s(self.sampling(x))
        if self.first:  # pooling first is cheaper and equal for a linear 1x1 conv
            return self.conv_s(self.sampling(x))
        return self.sampling(self.conv_s(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dx = self.conv2(self.conv1(x))
        if self.direction < 0:
            dx = self.sampling(dx)
        return self.shortcut(x) + dx


@NETWORKS.register("oasis_discriminator")
class OASISDiscriminator(nn.Module):
    """forward(image (B, in_channels, H, W)) -> (B, num_classes + 1, H, W) logits; channel 0 is
    "fake", channel 1 + c is class c. H and W must be divisible by 2**n_blocks."""

    def __init__(self, num_classes: int, width: int = 64, n_blocks: int = 6, in_channels: int = 3,
                 spectral_norm: bool = True):
        super().__init__()
        if n_blocks < 2:
            raise ValueError(f"n_blocks must be at least 2, got {n_blocks}")
        self.num_classes, self.size_multiple = num_classes, 2 ** n_blocks
        ch = [in_channels] + [width * min(2 ** (1 + i // 2), 8) for i in range(n_blocks)]
        self.down = nn.ModuleList(ResBlockD(ch[i], ch[i + 1], -1, first=i == 0, sn=spectral_norm)
                                  for i in range(n_blocks))
        up = [ResBlockD(ch[-1], ch[-2], 1, sn=spectral_norm)]
        up += [ResBlockD(2 * ch[-1 - i], ch[-2 - i], 1, sn=spectral_norm) for i in range(1, n_blocks - 1)]
        up.append(ResBlockD(2 * ch[1], width, 1, sn=spectral_norm))
        self.up = nn.ModuleList(up)
        self.out = nn.Conv2d(width, num_classes + 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_size(self, x.shape[-2], x.shape[-1])
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
        x = self.up[0](x)
        for i in range(1, len(self.up)):
            x = self.up[i](torch.cat([skips[-i - 1], x], 1))
        return self.out(x)
