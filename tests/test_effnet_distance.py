"""The offline distribution distance in EfficientNet-Lite0 feature space, through torchmetrics."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from prism.fid.effnet_features import EfficientNetLite0Features, effnet_distances
from tests.conftest import sample_photos


def _crops(seed: int, count: int = 24, blur: bool = False) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        img = sample_photos()[i % 4]
        y, x = rng.integers(0, img.shape[0] - 128), rng.integers(0, img.shape[1] - 128)
        out.append(torch.from_numpy(img[y:y + 128, x:x + 128].copy()).permute(2, 0, 1).float() / 255)
    images = torch.stack(out)
    if blur:  # a degraded copy: a distribution a real metric must tell apart
        images = torch.nn.functional.avg_pool2d(images, 9, 1, 4)
    return images


def test_features_are_imagenet_features_with_a_named_identity():
    net = EfficientNetLite0Features()
    feats = net(_crops(0, 4))
    assert feats.shape == (4, 1280) and (feats >= 0).all() and (feats <= 6).all()  # after ReLU6
    assert net.feature_id.startswith("efficientnet-lite0-pool1280:sha256=")


def test_distance_is_small_for_the_same_distribution_and_grows_for_a_degraded_one():
    real = _crops(0)
    same = effnet_distances(real, _crops(1), cache=False)
    blurred = effnet_distances(real, _crops(1, blur=True), cache=False)
    assert set(same) >= {"fd_effnet_lite0", "kid_effnet_lite0"} and "fid" not in same  # named for what it is
    # with 24 images in 1280 dimensions the same-distribution distance is all estimation noise,
    # and still the blurred set lies clearly farther
    assert blurred["fd_effnet_lite0"] > 1.3 * same["fd_effnet_lite0"]
    assert blurred["kid_effnet_lite0"] > same["kid_effnet_lite0"]
    assert effnet_distances(real, real, cache=False)["fd_effnet_lite0"] == pytest.approx(0, abs=1e-2)
