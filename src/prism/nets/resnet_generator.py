"""The CycleGAN ResNet generator (Zhu et al. 2017, after Johnson et al. 2016): downsample twice,
transform with residual blocks at 1/4 resolution, upsample twice. Reflection padding keeps
borders free of the dark frame zero padding leaves in translated images.

The module tree is laid out exactly like `ResnetGenerator` in junyanz/pytorch-CycleGAN-and-pix2pix
(one `self.model` Sequential in the reference order; blocks hold a `conv_block` Sequential), so the
reference's `latest_net_G_A.pth` state dicts load into it unchanged (see prism.interop).

`upsample="resize"` swaps each stride-2 transposed convolution for nearest-neighbour x2 + a 3x3
convolution (Odena et al. 2016, "Deconvolution and checkerboard artifacts"): a 3x3 kernel at
stride 2 overlaps its neighbours unevenly, so every output pixel of period 2 (and, after two of
them, 4) gets a different share of the weights, a grid the shipped transposed-conv model shows
over every translation (docs/cyclegan.md). The default stays "transpose", the reference layout.

`antialias=True` low-passes around every change of resolution (binomial [1,2,1] blur, zero response
at Nyquist): before each stride-2 encoder convolution (BlurPool, Zhang 2019) and after the ReLU of
each upsampling stage. Without it the trained bilinear model still drew a period-4 grid (54.8 vs
4.0 on the input photos at that period) although the same network at initialisation does not (3.7):
the decoder learnt to make fine texture from the phase of its 1/4-scale grid (a 3x3 convolution
after bilinear x2 can detect the kinks of the interpolation, which sit on a period-2 lattice). A
period-2 pattern at the half-scale stage is period 4 in the output; the blur removes it there, and
the final 7x7 convolution, being linear, cannot put it back. The blurs hold no weights, so the state
dict keys stay the reference's and a model trained without them loads (`train.init_from`).

`blur_bottleneck=True` also low-passes the residual blocks' output before the first upsampling.
With `antialias` alone the trained model moved its texture to the 1/4-scale stage's own Nyquist
pattern, a checkerboard there that is an 8-px diagonal ripple in the output (period 4 after the
ReLUs; the blur at inference alone takes that model's period-4 index from 19.4 to 7.2, the photos'
3.9). A separate flag, so models trained without it keep their outputs.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from prism.nets.common import BlurredConv2d, BlurredReLU, BlurredUpsample, check_size, init_gan_weights, norm_layer
from prism.registry import NETWORKS

N_DOWNSAMPLING = 2  # fixed in the reference; inputs must be divisible by 2**2
UPSAMPLING = ("transpose", "resize", "bilinear")


class ResnetBlock(nn.Module):
    """x + conv_block(x), conv_block = pad, conv3x3, norm, ReLU, [dropout], pad, conv3x3, norm."""

    def __init__(self, dim: int, norm: str, dropout: float, use_bias: bool):
        super().__init__()
        layers = [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=use_bias), norm_layer(norm, dim), nn.ReLU(True)]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=use_bias), norm_layer(norm, dim)]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


@NETWORKS.register("resnet_generator")
class ResnetGenerator(nn.Module):
    """ngf: width of the first layer (64 in the paper); n_blocks: 9 for 256 px, 6 for 128 px.

    upsample: "transpose" (the reference), "resize" (nearest x2 + conv) or "bilinear" (bilinear
    x2 + conv: same weights as "resize", no 2x2 blocks for the convs to smooth away).
    Input and output in [-1, 1] (tanh). Height and width must be divisible by 4 (`size_multiple`)
    and at least 8 (`min_size`: the reflection padding needs 2x2 feature maps at 1/4 scale).
    """

    size_multiple = 2 ** N_DOWNSAMPLING
    min_size = 2 * 2 ** N_DOWNSAMPLING

    def __init__(self, in_channels: int = 3, out_channels: int = 3, ngf: int = 64, n_blocks: int = 9,
                 norm: str = "instance", dropout: float = 0.0, upsample: str = "transpose",
                 antialias: bool = False, blur_bottleneck: bool = False):
        super().__init__()
        if n_blocks < 0:
            raise ValueError(f"n_blocks must be >= 0, got {n_blocks}")
        if upsample not in UPSAMPLING:
            raise ValueError(f"upsample must be one of {', '.join(UPSAMPLING)}, got {upsample!r}")
        if blur_bottleneck and upsample == "transpose":
            raise ValueError("blur_bottleneck blurs before an x2 resize: use upsample 'resize' or 'bilinear'")
        # The reference gives convs a bias only with instance norm (batch norm has its own shift).
        use_bias = norm != "batch"
        layers = [nn.ReflectionPad2d(3), nn.Conv2d(in_channels, ngf, 7, bias=use_bias), norm_layer(norm, ngf),
                  nn.ReLU(True)]
        for i in range(N_DOWNSAMPLING):
            mult = 2 ** i
            down_conv = BlurredConv2d if antialias else nn.Conv2d
            layers += [down_conv(ngf * mult, ngf * mult * 2, 3, stride=2, padding=1, bias=use_bias),
                       norm_layer(norm, ngf * mult * 2), nn.ReLU(True)]
        mult = 2 ** N_DOWNSAMPLING
        layers += [ResnetBlock(ngf * mult, norm, dropout, use_bias) for _ in range(n_blocks)]
        for i in range(N_DOWNSAMPLING):
            mult = 2 ** (N_DOWNSAMPLING - i)
            if upsample == "transpose":
                layers.append(nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 3, stride=2, padding=1,
                                                 output_padding=1, bias=use_bias))
            else:
                up = BlurredUpsample if blur_bottleneck and i == 0 else nn.Upsample
                layers += [up(scale_factor=2, mode="nearest" if upsample == "resize" else "bilinear"),
                           nn.ReflectionPad2d(1),
                           nn.Conv2d(ngf * mult, ngf * mult // 2, 3, bias=use_bias)]
            layers += [norm_layer(norm, ngf * mult // 2), BlurredReLU() if antialias else nn.ReLU(True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, out_channels, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)
        init_gan_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_size(self, x.shape[-2], x.shape[-1])
        return self.model(x)
