"""The pix2pix U-Net generator (Isola et al. 2017): a strided-conv encoder, a transposed-conv
decoder and skip connections at every scale, so low-level structure (edges) passes straight
through while the bottleneck decides colour/appearance."""
from __future__ import annotations

import torch
import torch.nn as nn

from prism.nets.common import check_size, init_gan_weights, norm_layer
from prism.registry import NETWORKS


@NETWORKS.register("unet")
class UNet(nn.Module):
    """depth = number of stride-2 downsamplings (8 for 256 px in the paper: bottleneck 1x1).

    Inputs must be divisible by 2**depth (`size_multiple`). Dropout follows the paper: on the
    three innermost decoder stages after the bottleneck.
    """

    def __init__(self, in_channels: int = 1, out_channels: int = 2, depth: int = 8, width: int = 64,
                 norm: str = "batch", dropout: float = 0.5, max_width_mult: int = 8,
                 final_activation: str = "tanh"):
        super().__init__()
        if depth < 2:
            raise ValueError(f"UNet depth must be at least 2, got {depth}")
        self.size_multiple = 2 ** depth
        ch = [min(width * 2 ** i, width * max_width_mult) for i in range(depth)]
        self.down = nn.ModuleList()
        for i in range(depth):
            layers = [] if i == 0 else [nn.LeakyReLU(0.2, inplace=True)]
            layers.append(nn.Conv2d(in_channels if i == 0 else ch[i - 1], ch[i], 4, 2, 1, bias=norm != "batch"))
            if 0 < i < depth - 1:  # no norm on the raw input nor on the 1x1 bottleneck
                layers.append(norm_layer(norm, ch[i]))
            self.down.append(nn.Sequential(*layers))
        self.up = nn.ModuleList()
        for i in reversed(range(depth)):
            c_in = ch[i] if i == depth - 1 else 2 * ch[i]
            c_out = out_channels if i == 0 else ch[i - 1]
            layers = [nn.ReLU(inplace=True), nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=i == 0 or norm != "batch")]
            if i > 0:
                layers.append(norm_layer(norm, c_out))
                if dropout > 0 and depth - 4 <= i <= depth - 2:
                    layers.append(nn.Dropout(dropout))
            self.up.append(nn.Sequential(*layers))
        self.final = {"tanh": nn.Tanh(), "none": nn.Identity()}[final_activation]
        init_gan_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_size(self, x.shape[-2], x.shape[-1])
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
        skips.pop()  # the bottleneck feeds the decoder directly
        for block in self.up:
            x = block(x)
            if skips:
                x = torch.cat([x, skips.pop()], dim=1)
        return self.final(x)
