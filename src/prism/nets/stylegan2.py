"""StyleGAN2 generator and residual discriminator (Karras et al. 2020), written for PRISM.

Follows the design of stylegan2-ada-pytorch's `networks.py` and keeps its state-dict names
(`mapping.fc0.weight`, `synthesis.b8.conv0.affine.weight`, `b64.skip.weight`, ...), without its
custom CUDA ops: resampling is plain PyTorch so the same code runs on a laptop CPU.

- Equalised learning rate everywhere: weights are stored N(0, 1) and scaled by 1/sqrt(fan_in) at
  run time, so Adam's per-parameter step sizes are the same for every layer.
- Mapping network z -> w with a 0.01 learning-rate multiplier (it would otherwise dominate) and a
  tracked running mean `w_avg` for the truncation trick.
- Modulated convolutions with weight demodulation instead of AdaIN: the style scales the input
  channels and the output is divided by the expected norm, which removes the "droplet" artefacts.
- Per-layer noise inputs with learned strength (initially 0), a learned constant 4x4 input,
  toRGB skip connections summed over resolutions, style mixing by a per-batch crossover layer.

Differences from the reference, on purpose: up-sampling is bilinear x2 (which is the reference's
[1,3,3,1] filter on zero-stuffed pixels, with edge replication) followed by the 3x3 convolution,
and the discriminator blurs and subsamples *before* its 3x3 convolution (4x cheaper on CPU).
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from prism.registry import NETWORKS

LRELU_GAIN = math.sqrt(2.0)  # keeps activations at unit variance through leaky ReLU(0.2)


def normalize_2nd_moment(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    return x * (x.square().mean(dim=1, keepdim=True) + eps).rsqrt()


def lrelu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.2) * LRELU_GAIN


def channels_at(resolution: int, channel_base: int, channel_max: int) -> int:
    return min(channel_base // resolution, channel_max)


def _blur_kernel(channels: int) -> torch.Tensor:
    k = torch.tensor([1.0, 3.0, 3.0, 1.0])
    k = torch.outer(k, k)
    return (k / k.sum()).expand(channels, 1, 4, 4).contiguous()


def downsample2x(x: torch.Tensor) -> torch.Tensor:
    """Antialiased 2x reduction: the [1,3,3,1] low-pass filter, then every second pixel."""
    return F.conv2d(x, _blur_kernel(x.shape[1]).to(x), stride=2, padding=1, groups=x.shape[1])


def upsample2x(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


def modulated_conv2d(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor,
                     demodulate: bool = True, padding: int = 0) -> torch.Tensor:
    """Convolution by per-sample weights w'_oik = w_oik * s_i, demodulated to
    w''_oik = w'_oik / sqrt(sum_ik w'_oik^2 + 1e-8).

    Computed by scaling activations instead of building B weight tensors: conv(x * s, w) * d
    equals conv(x, w'') because s_i scales input channels and d_o output channels, and a plain
    convolution with one shared weight is much faster on CPU than a grouped one.
    x: (B,I,H,W), weight: (O,I,k,k), styles: (B,I).
    """
    b = x.shape[0]
    x = x * styles.reshape(b, -1, 1, 1)
    x = F.conv2d(x, weight, padding=padding)
    if demodulate:
        # sum_ik (w_oik s_i)^2 = sum_i s_i^2 (sum_k w_oik^2): one (B,I) x (I,O) product.
        coef = (styles.square() @ weight.square().sum(dim=(2, 3)).t() + 1e-8).rsqrt()
        x = x * coef.reshape(b, -1, 1, 1)
    return x


class FullyConnected(nn.Module):
    """Linear layer with equalised learning rate and an optional learning-rate multiplier."""

    def __init__(self, in_features: int, out_features: int, activation: bool = False,
                 lr_multiplier: float = 1.0, bias_init: float = 0.0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_multiplier)
        self.bias = nn.Parameter(torch.full((out_features,), float(bias_init)))
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.linear(x, self.weight * self.weight_gain, self.bias * self.bias_gain)
        return lrelu(x) if self.activation else x


class Conv2d(nn.Module):
    """Equalised-learning-rate convolution; `down` blurs and subsamples first; `gain` scales the
    output (sqrt(1/2) on both residual branches keeps the sum at unit variance)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, bias: bool = True,
                 activation: bool = True, down: bool = False, gain: float = 1.0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel_size ** 2)
        self.activation, self.down, self.gain = activation, down, gain

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.down:
            x = downsample2x(x)
        x = F.conv2d(x, self.weight * self.weight_gain, self.bias, padding=self.weight.shape[-1] // 2)
        return (lrelu(x) if self.activation else x) * self.gain


class MappingNetwork(nn.Module):
    def __init__(self, z_dim: int, w_dim: int, num_ws: int, num_layers: int = 8,
                 lr_multiplier: float = 0.01, w_avg_beta: float = 0.995):
        super().__init__()
        self.z_dim, self.w_dim, self.num_ws, self.num_layers = z_dim, w_dim, num_ws, num_layers
        self.w_avg_beta = w_avg_beta
        for i in range(num_layers):
            setattr(self, f"fc{i}", FullyConnected(z_dim if i == 0 else w_dim, w_dim, activation=True,
                                                   lr_multiplier=lr_multiplier))
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(self, z: torch.Tensor, truncation_psi: float = 1.0, truncation_cutoff: int | None = None,
                update_w_avg: bool = True) -> torch.Tensor:
        """z (B, z_dim) -> ws (B, num_ws, w_dim): the same w for every layer (style mixing and
        W+ projection make them differ later). In training mode, w_avg follows the batch means."""
        x = normalize_2nd_moment(z)
        for i in range(self.num_layers):
            x = getattr(self, f"fc{i}")(x)
        if self.training and update_w_avg:
            # float32 whatever autocast computed x in: the running mean keeps its precision
            self.w_avg.copy_(x.detach().float().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        ws = x.unsqueeze(1).repeat(1, self.num_ws, 1)
        if truncation_psi != 1:
            cut = self.num_ws if truncation_cutoff is None else truncation_cutoff
            ws[:, :cut] = self.w_avg.to(ws.dtype).lerp(ws[:, :cut], truncation_psi)
        return ws


class SynthesisLayer(nn.Module):
    """Modulated 3x3 conv (optionally after 2x up-sampling), noise, bias, leaky ReLU."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, up: bool = False):
        super().__init__()
        self.resolution, self.up = resolution, up
        self.affine = FullyConnected(w_dim, in_channels, bias_init=1.0)  # styles start at 1: plain conv
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 3, 3))
        self.noise_strength = nn.Parameter(torch.zeros([]))
        self.register_buffer("noise_const", torch.randn(resolution, resolution))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.weight_gain = 1.0 / math.sqrt(in_channels * 9)

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str = "random",
                noise: torch.Tensor | None = None) -> torch.Tensor:
        if self.up:
            x = upsample2x(x)
        # The weight gain cancels under demodulation (up to its 1e-8); applied for the same
        # numerics as the reference, whose weights are stored without it.
        x = modulated_conv2d(x, self.weight * self.weight_gain, self.affine(w), demodulate=True, padding=1)
        if noise is None and noise_mode == "random":
            noise = torch.randn(x.shape[0], 1, self.resolution, self.resolution, device=x.device, dtype=x.dtype)
        elif noise is None and noise_mode == "const":
            noise = self.noise_const
        if noise is not None:
            x = x + noise * self.noise_strength
        return lrelu(x + self.bias.reshape(1, -1, 1, 1))


class ToRGB(nn.Module):
    def __init__(self, in_channels: int, w_dim: int, out_channels: int = 3):
        super().__init__()
        self.affine = FullyConnected(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.weight_gain = 1.0 / math.sqrt(in_channels)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        styles = self.affine(w) * self.weight_gain
        return modulated_conv2d(x, self.weight, styles, demodulate=False) + self.bias.reshape(1, -1, 1, 1)


class SynthesisBlock(nn.Module):
    """One resolution: (constant input | up-sampling conv0) + conv1, and its toRGB contribution."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int):
        super().__init__()
        self.resolution = resolution
        if resolution == 4:
            self.const = nn.Parameter(torch.randn(out_channels, 4, 4))
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, w_dim, resolution, up=True)
        self.conv1 = SynthesisLayer(out_channels, out_channels, w_dim, resolution)
        self.torgb = ToRGB(out_channels, w_dim)
        self.num_conv = 1 if resolution == 4 else 2

    def layers(self) -> list[SynthesisLayer]:
        return [self.conv1] if self.resolution == 4 else [self.conv0, self.conv1]

    def forward(self, x, img, ws, noise_mode="random", noises=None):
        """ws: (B, num_conv + 1, w_dim); the toRGB w is the next block's first w (reference layout)."""
        if self.resolution == 4:
            x = self.const.unsqueeze(0).repeat(ws.shape[0], 1, 1, 1)
        for i, layer in enumerate(self.layers()):
            x = layer(x, ws[:, i], noise_mode, None if noises is None else noises[i])
        y = self.torgb(x, ws[:, self.num_conv])
        img = y if img is None else upsample2x(img) + y
        return x, img


class SynthesisNetwork(nn.Module):
    def __init__(self, w_dim: int, resolution: int, channel_base: int, channel_max: int):
        super().__init__()
        self.resolutions = [2 ** i for i in range(2, int(math.log2(resolution)) + 1)]
        for res in self.resolutions:
            cin = channels_at(res // 2, channel_base, channel_max) if res > 4 else 0
            setattr(self, f"b{res}", SynthesisBlock(cin, channels_at(res, channel_base, channel_max), w_dim, res))
        self.num_ws = sum(self.block(r).num_conv for r in self.resolutions) + 1

    def block(self, res: int) -> SynthesisBlock:
        return getattr(self, f"b{res}")

    def noise_layers(self) -> list[SynthesisLayer]:
        return [layer for r in self.resolutions for layer in self.block(r).layers()]

    def forward(self, ws: torch.Tensor, noise_mode: str = "random", noises: list | None = None) -> torch.Tensor:
        """noises: one (1|B, 1, res, res) map per synthesis layer (the projector optimises them);
        otherwise noise_mode: random (fresh per call), const (the stored maps) or none."""
        x = img = None
        w_idx = n_idx = 0
        for res in self.resolutions:
            block = self.block(res)
            block_noises = None if noises is None else noises[n_idx:n_idx + block.num_conv]
            x, img = block(x, img, ws[:, w_idx:w_idx + block.num_conv + 1], noise_mode, block_noises)
            w_idx += block.num_conv
            n_idx += block.num_conv
        return img


@NETWORKS.register("stylegan2_generator")
class StyleGAN2Generator(nn.Module):
    """z (B, z_dim) -> image (B, 3, resolution, resolution), roughly in [-1, 1].

    channel_base / channel_max: channels at resolution r are min(channel_base / r, channel_max);
    the paper uses 32768 / 512 (16384 for 256 px), a CPU preset a few thousand / 64-128.
    """

    def __init__(self, resolution: int = 256, z_dim: int = 512, w_dim: int = 512, mapping_layers: int = 8,
                 channel_base: int = 16384, channel_max: int = 512, mapping_lr_multiplier: float = 0.01,
                 w_avg_beta: float = 0.995):
        super().__init__()
        if resolution < 4 or resolution & (resolution - 1):
            raise ValueError(f"resolution must be a power of two >= 4, got {resolution}")
        self.resolution, self.z_dim, self.w_dim = resolution, z_dim, w_dim
        self.synthesis = SynthesisNetwork(w_dim, resolution, channel_base, channel_max)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(z_dim, w_dim, self.num_ws, mapping_layers, mapping_lr_multiplier, w_avg_beta)

    def forward(self, z: torch.Tensor, truncation_psi: float = 1.0, noise_mode: str = "random",
                mixing_prob: float = 0.0) -> torch.Tensor:
        return self.synthesis(self.styles(z, truncation_psi, mixing_prob), noise_mode=noise_mode)

    def styles(self, z: torch.Tensor, truncation_psi: float = 1.0, mixing_prob: float = 0.0) -> torch.Tensor:
        """Mapping plus style mixing: with probability mixing_prob, the layers from a random
        crossover point on take the w of a second z, so the network cannot assume that adjacent
        styles are correlated (the paper's mixing regularisation). Draws from the global RNG."""
        ws = self.mapping(z, truncation_psi)
        if mixing_prob > 0:
            cutoff = int(torch.randint(1, self.num_ws, ()))
            if float(torch.rand(())) < mixing_prob:
                mixed = self.mapping(torch.randn_like(z), truncation_psi, update_w_avg=False)
                ws = torch.cat([ws[:, :cutoff], mixed[:, cutoff:]], dim=1)
        return ws

    def noise_shapes(self) -> list[tuple[int, int, int, int]]:
        return [(1, 1, layer.resolution, layer.resolution) for layer in self.synthesis.noise_layers()]


class MinibatchStd(nn.Module):
    """Appends the std of each feature over groups of `group_size` samples, averaged to one
    channel: D sees batch statistics, so a collapsed (too uniform) batch is easy to spot."""

    def __init__(self, group_size: int = 4):
        super().__init__()
        self.group_size = group_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        g = math.gcd(b, min(self.group_size, b))  # a group size that divides the batch
        y = x.reshape(g, -1, c, h, w)
        y = (y - y.mean(dim=0)).square().mean(dim=0).add(1e-8).sqrt()  # std over the group
        y = y.mean(dim=(1, 2, 3)).reshape(-1, 1, 1, 1).repeat(g, 1, h, w)
        return torch.cat([x, y], dim=1)


class DiscriminatorBlock(nn.Module):
    """Residual block: two 3x3 convs (the second halves the resolution) beside a 1x1 skip."""

    def __init__(self, in_channels: int, mid_channels: int, out_channels: int, from_rgb: bool):
        super().__init__()
        if from_rgb:
            self.fromrgb = Conv2d(3, in_channels, 1)
        self.conv0 = Conv2d(in_channels, mid_channels, 3)
        self.conv1 = Conv2d(mid_channels, out_channels, 3, down=True, gain=math.sqrt(0.5))
        self.skip = Conv2d(in_channels, out_channels, 1, bias=False, activation=False, down=True, gain=math.sqrt(0.5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if hasattr(self, "fromrgb"):
            x = self.fromrgb(x)
        return self.skip(x) + self.conv1(self.conv0(x))


@NETWORKS.register("stylegan2_discriminator")
class StyleGAN2Discriminator(nn.Module):
    """image (B, 3, resolution, resolution) -> realness logit (B, 1). `features(x)` returns the
    output of every block, which the restorer uses as an offline perceptual distance."""

    def __init__(self, resolution: int = 256, channel_base: int = 16384, channel_max: int = 512,
                 mbstd_group_size: int = 4):
        super().__init__()
        if resolution < 8 or resolution & (resolution - 1):
            raise ValueError(f"resolution must be a power of two >= 8, got {resolution}")
        self.resolution = resolution
        self.resolutions = [2 ** i for i in range(int(math.log2(resolution)), 2, -1)]  # 64, 32, ..., 8
        for res in self.resolutions:
            cin = channels_at(res, channel_base, channel_max)
            cout = channels_at(res // 2, channel_base, channel_max)
            setattr(self, f"b{res}", DiscriminatorBlock(cin, cin, cout, from_rgb=res == resolution))
        c4 = channels_at(4, channel_base, channel_max)
        self.mbstd = MinibatchStd(mbstd_group_size)
        self.conv = Conv2d(c4 + 1, c4, 3)
        self.fc = FullyConnected(c4 * 16, c4, activation=True)
        self.out = FullyConnected(c4, 1)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for res in self.resolutions:
            x = getattr(self, f"b{res}")(x)
            feats.append(x)
        return feats

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)[-1]
        x = self.conv(self.mbstd(x))
        return self.out(self.fc(x.flatten(1)))
