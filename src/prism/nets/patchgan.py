"""PatchGAN discriminator (pix2pix): a fully convolutional net scoring overlapping patches
as real or fake. n_layers=3 gives 70x70 receptive fields; it only has to judge local texture
and colour, the L1 term takes care of low frequencies."""
from __future__ import annotations

import torch.nn as nn
from torch.nn.utils.parametrizations import spectral_norm as _sn

from prism.nets.common import init_gan_weights, norm_layer
from prism.registry import NETWORKS


@NETWORKS.register("patchgan")
class PatchGAN(nn.Module):
    def __init__(self, in_channels: int = 3, width: int = 64, n_layers: int = 3, norm: str = "batch",
                 spectral_norm: bool = False):
        super().__init__()
        sn = _sn if spectral_norm else (lambda m: m)
        if spectral_norm:
            norm = "none"  # spectral norm replaces the normalisation layers
        layers = [sn(nn.Conv2d(in_channels, width, 4, 2, 1)), nn.LeakyReLU(0.2, inplace=True)]
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2 ** n, 8)
            stride = 2 if n < n_layers else 1
            layers += [sn(nn.Conv2d(width * prev, width * mult, 4, stride, 1, bias=norm != "batch")),
                       norm_layer(norm, width * mult), nn.LeakyReLU(0.2, inplace=True)]
        layers.append(sn(nn.Conv2d(width * mult, 1, 4, 1, 1)))
        self.net = nn.Sequential(*layers)
        init_gan_weights(self)
        self.features_at = [i for i, m in enumerate(self.net) if isinstance(m, nn.LeakyReLU)]

    def forward(self, x, return_features: bool = False):
        feats = []
        for i, layer in enumerate(self.net):
            x = layer(x)
            if return_features and i in self.features_at:
                feats.append(x)
        return (x, feats) if return_features else x

    @staticmethod
    def receptive_field(n_layers: int) -> int:
        rf = 1
        for stride in [1, 1] + [2] * n_layers:  # from the output back to the input
            rf = (rf - 1) * stride + 4
        return rf
