"""Pieces shared by the networks: norm layers by name and the GAN papers' weight init."""
from __future__ import annotations

import torch
import torch.nn as nn


def norm_layer(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    if kind in ("none", None):
        return nn.Identity()
    raise ValueError(f"unknown norm '{kind}'; use batch, instance or none")


def init_gan_weights(module: nn.Module, gain: float = 0.02) -> None:
    """N(0, 0.02) conv weights and N(1, 0.02) norm scales, as in DCGAN/pix2pix/CycleGAN."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)


def check_size(net: nn.Module, h: int, w: int) -> None:
    m = net.size_multiple
    if h % m or w % m:
        raise ValueError(f"{type(net).__name__} needs height and width divisible by {m}, got {h}x{w}; "
                         f"resize or pad the input (prism's inference pads automatically)")


def binomial_blur(x: torch.Tensor) -> torch.Tensor:
    """3x3 binomial low-pass ([1,2,1] x [1,2,1] / 16, reflection padded, per channel): its response
    is zero at the Nyquist frequency, so a period-2 pattern at this resolution is removed exactly."""
    k = torch.tensor([1.0, 2.0, 1.0], dtype=x.dtype, device=x.device)
    k = (torch.outer(k, k) / 16).expand(x.shape[1], 1, 3, 3)
    mode = "reflect" if min(x.shape[-2:]) > 1 else "replicate"  # a 1x1 map (a U-Net's bottleneck) cannot reflect
    return torch.nn.functional.conv2d(torch.nn.functional.pad(x, (1, 1, 1, 1), mode=mode), k, groups=x.shape[1])


class BlurredConv2d(nn.Conv2d):
    """A convolution that low-passes its input first (BlurPool before a strided convolution; the
    same parameters and state-dict keys as nn.Conv2d)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(binomial_blur(x))


class BlurredReLU(nn.ReLU):
    """ReLU, then the binomial low-pass: removes the Nyquist pattern the nonlinearity can create."""

    def __init__(self):
        super().__init__(inplace=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return binomial_blur(super().forward(x))


class BlurredUpsample(nn.Upsample):
    """Binomial low-pass, then x2 upsampling: the input's own Nyquist pattern (a checkerboard at the
    lower resolution) is removed before interpolation spreads it into a lattice of the upper one."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(binomial_blur(x))


def pad_for(net: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
    """(C,H,W) -> (padded to the net's size multiple and minimum size, (H, W)). Padding goes on the
    bottom and right by reflection (no hard edge for the network to react to), by replication where
    the image is too small to reflect."""
    h, w = x.shape[-2:]
    m, least = getattr(net, "size_multiple", 1), getattr(net, "min_size", 1)
    ph, pw = max(-(-h // m) * m, least) - h, max(-(-w // m) * m, least) - w
    if ph or pw:
        mode = "reflect" if ph < h and pw < w else "replicate"
        x = torch.nn.functional.pad(x[None], (0, pw, 0, ph), mode=mode)[0]
    return x, (h, w)
