"""The pix2pix U-Net generator (Isola et al. 2017): a strided-conv encoder, a transposed-conv
decoder and skip connections at every scale, so low-level structure (edges) passes straight
through while the bottleneck decides colour/appearance."""
from __future__ import annotations

import torch
import torch.nn as nn

from prism.nets.common import BlurredConv2d, BlurredReLU, check_size, init_gan_weights, norm_layer
from prism.registry import NETWORKS


@NETWORKS.register("unet")
class UNet(nn.Module):
    """depth = number of stride-2 downsamplings (8 for 256 px in the paper: bottleneck 1x1).

    Inputs must be divisible by 2**depth (`size_multiple`). Dropout follows the paper: on the
    three innermost decoder stages after the bottleneck.

    upsample: "transpose" (the paper's 4x4 stride-2 transposed convolutions) or "bilinear"
    (bilinear x2 + 3x3 convolution: the transposed decoder drew a mesh over the facades at 2,000
    steps, checkerboard index 73 vs 6.9 on the real photos, docs/cyclegan.md). antialias: blur
    before each stride-2 encoder convolution and after each decoder ReLU (as in resnet_generator).
    """

    def __init__(self, in_channels: int = 1, out_channels: int = 2, depth: int = 8, width: int = 64,
                 norm: str = "batch", dropout: float = 0.5, max_width_mult: int = 8,
                 final_activation: str = "tanh", upsample: str = "transpose", antialias: bool = False):
        super().__init__()
        if upsample not in ("transpose", "bilinear"):
            raise ValueError(f"upsample must be 'transpose' or 'bilinear', got {upsample!r}")
        if depth < 2:
            raise ValueError(f"UNet depth must be at least 2, got {depth}")
        self.size_multiple = 2 ** depth
        ch = [min(width * 2 ** i, width * max_width_mult) for i in range(depth)]
        self.down = nn.ModuleList()
        for i in range(depth):
            layers = [] if i == 0 else [nn.LeakyReLU(0.2, inplace=True)]
            down_conv = BlurredConv2d if antialias and i > 0 else nn.Conv2d  # the raw input is not blurred
            layers.append(down_conv(in_channels if i == 0 else ch[i - 1], ch[i], 4, 2, 1, bias=norm != "batch"))
            if 0 < i < depth - 1:  # no norm on the raw input nor on the 1x1 bottleneck
                layers.append(norm_layer(norm, ch[i]))
            self.down.append(nn.Sequential(*layers))
        self.up = nn.ModuleList()
        for i in reversed(range(depth)):
            c_in = ch[i] if i == depth - 1 else 2 * ch[i]
            c_out = out_channels if i == 0 else ch[i - 1]
            bias = i == 0 or norm != "batch"
            layers = [BlurredReLU() if antialias else nn.ReLU(inplace=True)]
            if upsample == "transpose":
                layers.append(nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=bias))
            else:
                layers += [nn.Upsample(scale_factor=2, mode="bilinear"), nn.ReflectionPad2d(1),
                           nn.Conv2d(c_in, c_out, 3, bias=bias)]
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
