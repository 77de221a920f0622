"""An image-level discriminator: strided convs, global average pooling and one real/fake logit
per image (the "Colorizer" seed's D), as opposed to PatchGAN's logit per patch."""
from __future__ import annotations

import torch.nn as nn
from torch.nn.utils.parametrizations import spectral_norm as _sn

from prism.nets.common import init_gan_weights, norm_layer
from prism.registry import NETWORKS


@NETWORKS.register("image_classifier")
class ImageDiscriminator(nn.Module):
    def __init__(self, in_channels: int = 3, width: int = 64, n_layers: int = 4, norm: str = "batch",
                 spectral_norm: bool = False):
        super().__init__()
        sn = _sn if spectral_norm else (lambda m: m)
        layers, ch = [], in_channels
        for i in range(n_layers):
            out = width * min(2 ** i, 8)
            layers += [sn(nn.Conv2d(ch, out, 4, 2, 1)), norm_layer("none" if i == 0 or spectral_norm else norm, out),
                       nn.LeakyReLU(0.2, inplace=True)]
            ch = out
        self.features = nn.Sequential(*layers)
        self.head = sn(nn.Linear(ch, 1))
        init_gan_weights(self)

    def forward(self, x, return_features: bool = False):
        feats = []
        for layer in self.features:
            x = layer(x)
            if return_features and isinstance(layer, nn.LeakyReLU):
                feats.append(x)
        logits = self.head(x.mean(dim=(2, 3)))
        return (logits, feats) if return_features else logits
