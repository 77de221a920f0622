"""Image distances for the projector.

- LPIPS with VGG16 (Zhang et al. 2018), the distance stylegan2's projector uses, when the user
  has the weights: torchvision's ImageNet VGG16 (`vgg16-397923af.pth`, keys `features.N.*`) and
  the LPIPS v0.1 linear layers (`lpips/weights/v0.1/vgg.pth`, keys `linK.model.1.weight`). Both
  layouts are reproduced here so those files load as they are; nothing is downloaded.
- Offline default: the same construction on the trained discriminator's block features (unit-
  normalised per position, squared differences, spatial mean; uniform layer weights, as no
  calibration exists for them) plus a pixel MSE, which a briefly trained D needs beside it.

A distance takes images in [0, 1] of any size (resized to its working size, both sides alike) and
returns one value per image; `prepare(target)` computes the target's features once.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from prism.weights import read_state_dict

VGG16_CONV = [(3, 64), (64, 64), "M", (64, 128), (128, 128), "M", (128, 256), (256, 256), (256, 256), "M",
              (256, 512), (512, 512), (512, 512), "M", (512, 512), (512, 512), (512, 512), "M"]
LPIPS_TAPS = (3, 8, 15, 22, 29)        # indices of relu1_2, relu2_2, relu3_3, relu4_3, relu5_3 in `features`
LPIPS_CHANNELS = (64, 128, 256, 512, 512)
LPIPS_SHIFT = (-0.030, -0.088, -0.188)  # LPIPS's ScalingLayer: ImageNet statistics in [-1, 1] units
LPIPS_SCALE = (0.458, 0.448, 0.450)


class LPIPSUnavailable(FileNotFoundError):
    pass


class VGG16Features(nn.Module):
    """torchvision's vgg16().features, same module indices (so its state dict loads as is)."""

    def __init__(self):
        super().__init__()
        layers: list[nn.Module] = []
        for item in VGG16_CONV:
            if item == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(*item, kernel_size=3, padding=1), nn.ReLU(inplace=False)]
        self.features = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        taps = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in LPIPS_TAPS:
                taps.append(x)
                if len(taps) == len(LPIPS_TAPS):
                    break
        return taps


class _LinearLayer(nn.Module):
    """LPIPS's NetLinLayer: dropout (inactive at inference) then a 1x1 conv to one channel."""

    def __init__(self, channels: int):
        super().__init__()
        self.model = nn.Sequential(nn.Dropout(), nn.Conv2d(channels, 1, 1, bias=False))


def _unit(x: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    return x / (x.square().sum(dim=1, keepdim=True).sqrt() + eps)


class LPIPS(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = VGG16Features()
        for k, c in enumerate(LPIPS_CHANNELS):
            setattr(self, f"lin{k}", _LinearLayer(c))
        self.register_buffer("shift", torch.tensor(LPIPS_SHIFT).reshape(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(LPIPS_SCALE).reshape(1, 3, 1, 1))

    @classmethod
    def from_files(cls, vgg16_path: str | Path | None, lin_path: str | Path | None) -> "LPIPS":
        if not vgg16_path or not lin_path:
            raise LPIPSUnavailable(
                "LPIPS needs two weight files, none of which PRISM can download: torchvision's VGG16 "
                "(vgg16-397923af.pth) and the LPIPS v0.1 linear layers (vgg.pth from the lpips package); "
                "give both paths, or leave both out for the offline discriminator distance")
        model = cls()
        vgg = _load_state(vgg16_path)
        features = {k[len("features."):]: v for k, v in vgg.items() if k.startswith("features.")}
        _load_exact(model.net.features, features, vgg16_path, "VGG16 features (torchvision layout features.N.weight/bias)",
                    "features.")
        lins = _load_state(lin_path)
        for k in range(len(LPIPS_CHANNELS)):
            prefix = f"lin{k}."
            _load_exact(getattr(model, f"lin{k}"), {n[len(prefix):]: v for n, v in lins.items() if n.startswith(prefix)},
                        lin_path, "LPIPS linear layers (lin0..lin4.model.1.weight)", prefix)
        return model.eval().requires_grad_(False)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """x in [0, 1] -> unit-normalised VGG activations at the five taps."""
        return [_unit(f) for f in self.net(((x * 2 - 1) - self.shift) / self.scale)]

    def distance(self, feats_x: list[torch.Tensor], feats_y: list[torch.Tensor]) -> torch.Tensor:
        total = 0
        for k, (a, b) in enumerate(zip(feats_x, feats_y)):
            total = total + getattr(self, f"lin{k}").model((a - b).square()).mean(dim=(1, 2, 3))
        return total

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.distance(self.features(x), self.features(y))


def _load_state(path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise LPIPSUnavailable(f"{path}: no such weight file")
    return read_state_dict(path, what="VGG16/LPIPS state dict")


def _load_exact(module: nn.Module, state: dict, path, what: str, prefix: str = "") -> None:
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state))
    wrong = [k for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape)]
    if missing or wrong:
        detail = f"missing {[prefix + k for k in missing[:4]]}" if missing else \
            f"shape of {prefix}{wrong[0]} is {tuple(state[wrong[0]].shape)}, expected {tuple(expected[wrong[0]].shape)}"
        raise ValueError(f"{path}: not the {what} ({detail})")
    module.load_state_dict({k: state[k].float() for k in expected})


# --- distances for the projector ------------------------------------------------------------------------------
def _resize(x: torch.Tensor, size: int) -> torch.Tensor:
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    mode = "area" if x.shape[-1] > size else "bilinear"
    return F.interpolate(x, size=(size, size), mode=mode, **({} if mode == "area" else {"align_corners": False}))


class LPIPSDistance:
    def __init__(self, lpips: LPIPS, size: int = 256):
        self.lpips, self.size = lpips, min(size, 256)  # stylegan2's projector also works at <= 256 px
        self.name = "lpips-vgg16"

    def to(self, device):
        self.lpips.to(device)
        return self

    def prepare(self, target: torch.Tensor):
        with torch.no_grad():
            return self.lpips.features(_resize(target, self.size))

    def __call__(self, x: torch.Tensor, prepared) -> torch.Tensor:
        return self.lpips.distance(self.lpips.features(_resize(x, self.size)), prepared)


class DiscriminatorDistance:
    """Offline perceptual distance: LPIPS's formula on the trained discriminator's features,
    uniform weights, plus `pixel_weight` x MSE in the generator's [-1, 1] units."""

    def __init__(self, D: nn.Module, pixel_weight: float = 1.0):
        self.D = D.eval().requires_grad_(False)
        self.size, self.pixel_weight = D.resolution, pixel_weight
        self.name = "discriminator-features" + (f" + {pixel_weight:g} x pixel-mse" if pixel_weight else "")

    def to(self, device):
        self.D.to(device)
        return self

    def _features(self, x):
        return [_unit(f) for f in self.D.features(_resize(x, self.size) * 2 - 1)]

    def prepare(self, target: torch.Tensor):
        with torch.no_grad():
            return target, self._features(target)

    def __call__(self, x: torch.Tensor, prepared) -> torch.Tensor:
        target, feats = prepared
        d = sum((a - b).square().sum(dim=1).mean(dim=(1, 2)) for a, b in zip(self._features(x), feats)) / len(feats)
        if self.pixel_weight:
            d = d + self.pixel_weight * ((x - target) * 2).square().mean(dim=(1, 2, 3))
        return d


class PixelDistance:
    """MSE only: for a generator saved without its discriminator."""
    name = "pixel-mse"

    def to(self, device):
        return self

    def prepare(self, target):
        return target

    def __call__(self, x, prepared):
        return ((x - prepared) * 2).square().mean(dim=(1, 2, 3))


def make_distance(D: nn.Module | None, size: int, lpips_vgg16=None, lpips_lin=None, pixel_weight: float = 1.0):
    """LPIPS when both weight files are given, else the discriminator distance, else pixels."""
    if lpips_vgg16 or lpips_lin:
        return LPIPSDistance(LPIPS.from_files(lpips_vgg16, lpips_lin), size)
    if D is not None:
        return DiscriminatorDistance(D, pixel_weight)
    return PixelDistance()
