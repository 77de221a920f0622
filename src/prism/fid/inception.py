"""The FID Inception-v3 feature network, written in plain torch (no torchvision, no torch-fidelity).

The module and parameter names reproduce pytorch-fid's `fid_inception_v3()` (torchvision's
`Inception3` with `num_classes=1008`, no aux head, and the FIDInceptionA/C/E_1/E_2 patches), so
the pytorch-fid release file `pt_inception-2015-12-05-6726825d.pth` loads into it key for key.
What makes it *the FID network* rather than torchvision's Inception-v3, each kept on purpose:
  * BatchNorm eps = 0.001 (the TensorFlow graph's value);
  * the 3x3 average pools in the A, C and E blocks ignore padded zeros (`count_include_pad=False`,
    as TensorFlow's avg_pool does);
  * the last E block (Mixed_7c) max-pools its pool branch, a quirk of the 2015 TensorFlow graph;
  * input as pytorch-fid feeds it: RGB in [0, 1], bilinearly resized to 299x299
    (align_corners=False, no antialiasing), then scaled to [-1, 1].
The output is the 2048-d "pool3" vector (global average of Mixed_7c); `fc` exists only so the
weight file's keys match and is never used.

PRISM never downloads the weights: `load_fid_inception` reads them from a path the user gives.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from prism.weights import read_state_dict as read_weights_file, sha256

WEIGHTS_FILENAME = "pt_inception-2015-12-05-6726825d.pth"
WEIGHTS_URL = ("https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
               "pt_inception-2015-12-05-6726825d.pth")
WEIGHTS_ENV = "PRISM_FID_WEIGHTS"
# torch.hub names files <name>-<first 8 hex digits of the file's sha256>.<ext>
OFFICIAL_SHA256_PREFIX = "6726825d"
INPUT_SIZE = (299, 299)
NUM_FEATURES = 2048


def prism_cache_dir() -> Path:
    """$XDG_CACHE_HOME/prism, else ~/.cache/prism."""
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "prism"


def default_weights_path() -> Path:
    return prism_cache_dir() / WEIGHTS_FILENAME


class FrozenBatchNorm2d(nn.Module):
    """Inference-only batch norm with the state keys of the weight file (weight, bias,
    running_mean, running_var). nn.BatchNorm2d would add `num_batches_tracked`, which the
    file does not have and which means nothing for a network that is never trained."""

    def __init__(self, channels: int, eps: float = 1e-3):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(channels), requires_grad=False)
        self.bias = nn.Parameter(torch.zeros(channels), requires_grad=False)
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                            training=False, eps=self.eps)


class ConvBN(nn.Module):
    """conv (no bias) -> batch norm (eps 0.001) -> ReLU; torchvision calls it BasicConv2d."""

    def __init__(self, cin: int, cout: int, kernel, stride=1, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, bias=False)
        self.bn = FrozenBatchNorm2d(cout, eps=1e-3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def _pool_3x3_same(x: torch.Tensor, kind: str) -> torch.Tensor:
    """The stride-1 pool in front of a block's `branch_pool` conv."""
    if kind == "max":
        return F.max_pool2d(x, kernel_size=3, stride=1, padding=1)
    # TensorFlow averages only over the real pixels at the border
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class InceptionA(nn.Module):
    """35x35 block (Mixed_5b/c/d): 1x1 | 1x1->5x5 | 1x1->3x3->3x3 | pool->1x1."""

    def __init__(self, cin: int, pool_features: int):
        super().__init__()
        self.branch1x1 = ConvBN(cin, 64, 1)
        self.branch5x5_1 = ConvBN(cin, 48, 1)
        self.branch5x5_2 = ConvBN(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = ConvBN(cin, 64, 1)
        self.branch3x3dbl_2 = ConvBN(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = ConvBN(96, 96, 3, padding=1)
        self.branch_pool = ConvBN(cin, pool_features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([
            self.branch1x1(x),
            self.branch5x5_2(self.branch5x5_1(x)),
            self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
            self.branch_pool(_pool_3x3_same(x, "avg")),
        ], dim=1)


class InceptionB(nn.Module):
    """35 -> 17 reduction (Mixed_6a); unpatched in the FID network."""

    def __init__(self, cin: int):
        super().__init__()
        self.branch3x3 = ConvBN(cin, 384, 3, stride=2)
        self.branch3x3dbl_1 = ConvBN(cin, 64, 1)
        self.branch3x3dbl_2 = ConvBN(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = ConvBN(96, 96, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([
            self.branch3x3(x),
            self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
            F.max_pool2d(x, kernel_size=3, stride=2),
        ], dim=1)


class InceptionC(nn.Module):
    """17x17 block with factorised 7x7 convolutions (Mixed_6b..6e)."""

    def __init__(self, cin: int, channels_7x7: int):
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = ConvBN(cin, 192, 1)
        self.branch7x7_1 = ConvBN(cin, c7, 1)
        self.branch7x7_2 = ConvBN(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = ConvBN(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = ConvBN(cin, c7, 1)
        self.branch7x7dbl_2 = ConvBN(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = ConvBN(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = ConvBN(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = ConvBN(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = ConvBN(cin, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        b7dbl = self.branch7x7dbl_1(x)
        for conv in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
            b7dbl = conv(b7dbl)
        return torch.cat([self.branch1x1(x), b7, b7dbl, self.branch_pool(_pool_3x3_same(x, "avg"))], dim=1)


class InceptionD(nn.Module):
    """17 -> 8 reduction (Mixed_7a); unpatched in the FID network."""

    def __init__(self, cin: int):
        super().__init__()
        self.branch3x3_1 = ConvBN(cin, 192, 1)
        self.branch3x3_2 = ConvBN(192, 320, 3, stride=2)
        self.branch7x7x3_1 = ConvBN(cin, 192, 1)
        self.branch7x7x3_2 = ConvBN(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = ConvBN(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = ConvBN(192, 192, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b7 = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        return torch.cat([self.branch3x3_2(self.branch3x3_1(x)), b7,
                          F.max_pool2d(x, kernel_size=3, stride=2)], dim=1)


class InceptionE(nn.Module):
    """8x8 block with split 1x3 / 3x1 heads (Mixed_7b with pool="avg", Mixed_7c with pool="max")."""

    def __init__(self, cin: int, pool: str):
        super().__init__()
        if pool not in ("avg", "max"):
            raise ValueError(f"pool must be 'avg' or 'max', got {pool!r}")
        self.pool = pool
        self.branch1x1 = ConvBN(cin, 320, 1)
        self.branch3x3_1 = ConvBN(cin, 384, 1)
        self.branch3x3_2a = ConvBN(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = ConvBN(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = ConvBN(cin, 448, 1)
        self.branch3x3dbl_2 = ConvBN(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = ConvBN(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = ConvBN(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = ConvBN(cin, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3_1(x)
        b3dbl = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        return torch.cat([
            self.branch1x1(x),
            self.branch3x3_2a(b3), self.branch3x3_2b(b3),
            self.branch3x3dbl_3a(b3dbl), self.branch3x3dbl_3b(b3dbl),
            self.branch_pool(_pool_3x3_same(x, self.pool)),
        ], dim=1)


def rgb_batch(images: torch.Tensor, size: tuple[int, int], antialias: bool = False) -> torch.Tensor:
    """A feature network's input: (N, 3, H, W) float in [0, 1] or uint8 -> float in [0, 1] at
    `size` (bilinear; no antialias, as pytorch-fid, unless asked)."""
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"expected (N, 3, H, W) RGB images, got shape {tuple(images.shape)}")
    x = images.float() / 255.0 if images.dtype == torch.uint8 else images.float()
    if tuple(x.shape[-2:]) != tuple(size):
        x = F.interpolate(x, size=size, mode="bilinear", antialias=antialias, align_corners=False)
    return x


class FIDInceptionV3(nn.Module):
    """(N, 3, H, W) RGB, float in [0, 1] or uint8 in [0, 255] -> (N, 2048) pool3 features.

    `num_features` lets torchmetrics size its states without probing the network with a dummy
    image; `input_size` tells PRISM's image loader what size to batch images at."""

    num_features = NUM_FEATURES
    input_size = INPUT_SIZE

    def __init__(self):
        super().__init__()
        self.Conv2d_1a_3x3 = ConvBN(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = ConvBN(32, 32, 3)
        self.Conv2d_2b_3x3 = ConvBN(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = ConvBN(64, 80, 1)
        self.Conv2d_4a_3x3 = ConvBN(80, 192, 3)
        self.Mixed_5b = InceptionA(192, pool_features=32)
        self.Mixed_5c = InceptionA(256, pool_features=64)
        self.Mixed_5d = InceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, channels_7x7=128)
        self.Mixed_6c = InceptionC(768, channels_7x7=160)
        self.Mixed_6d = InceptionC(768, channels_7x7=160)
        self.Mixed_6e = InceptionC(768, channels_7x7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280, pool="avg")
        self.Mixed_7c = InceptionE(2048, pool="max")
        self.fc = nn.Linear(2048, 1008)  # the 1008-class logits; kept for the weight file, unused
        self.requires_grad_(False)
        self.eval()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = 2.0 * rgb_batch(images, INPUT_SIZE) - 1.0  # at 299 pytorch-fid's resize is the identity
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        for block in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a, self.Mixed_6b,
                      self.Mixed_6c, self.Mixed_6d, self.Mixed_6e, self.Mixed_7a, self.Mixed_7b,
                      self.Mixed_7c):
            x = block(x)
        return x.mean(dim=(2, 3))  # adaptive average pool to 1x1 = pool3

    def train(self, mode: bool = True) -> "FIDInceptionV3":
        return super().train(False)  # a fixed feature extractor: never in training mode


# ---------------------------------------------------------------------------------------------
# Weights

def _missing_weights_message(searched: list[str]) -> str:
    where = "\n".join(f"  - {s}" for s in searched)
    return (
        f"FID Inception weights not found. Looked at:\n{where}\n"
        f"PRISM never downloads them. Get '{WEIGHTS_FILENAME}' (~92 MB, pytorch-fid's GitHub "
        f"release asset) from\n  {WEIGHTS_URL}\n"
        f"on a machine with internet access, then either put it at {default_weights_path()}, "
        f"set {WEIGHTS_ENV}=/path/to/{WEIGHTS_FILENAME}, or pass its path explicitly."
    )


def find_weights(path=None) -> Path:
    """The weight file to use: `path` (a file, or a folder holding WEIGHTS_FILENAME), else
    $PRISM_FID_WEIGHTS, else the PRISM cache. FileNotFoundError saying how to get it otherwise."""
    if path is not None:
        source, candidate = "given path", Path(path).expanduser()
    elif os.environ.get(WEIGHTS_ENV):
        source, candidate = f"${WEIGHTS_ENV}", Path(os.environ[WEIGHTS_ENV]).expanduser()
    else:
        source, candidate = "PRISM cache", default_weights_path()
    if candidate.is_dir():
        candidate = candidate / WEIGHTS_FILENAME
    if not candidate.is_file():
        raise FileNotFoundError(_missing_weights_message([f"{candidate} ({source})"]))
    return candidate


def read_state_dict(path) -> dict[str, torch.Tensor]:
    """Tensors of a .pth (read with weights_only=True: no code in the file is run) or .safetensors file."""
    return read_weights_file(path)


def check_state_dict(model: nn.Module, state: dict[str, torch.Tensor], source="state dict") -> dict:
    """`state` without `*.num_batches_tracked` (a training counter that some re-saved copies carry);
    ValueError naming every missing, unexpected or wrongly shaped key otherwise."""
    state = {k: v for k, v in state.items() if not k.endswith(".num_batches_tracked")}
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong_shape = sorted(f"{k}: file {tuple(state[k].shape)}, network {tuple(expected[k].shape)}"
                         for k in set(state) & set(expected) if state[k].shape != expected[k].shape)
    if missing or unexpected or wrong_shape:
        def listing(title, keys):
            return f"\n  {title} ({len(keys)}): " + ", ".join(keys) if keys else ""
        raise ValueError(
            f"{source} is not the FID Inception-v3 state dict of {WEIGHTS_FILENAME}:"
            + listing("missing keys", missing) + listing("unexpected keys", unexpected)
            + listing("wrong shapes", wrong_shape))
    return state


def load_fid_inception(path=None, device="cpu") -> FIDInceptionV3:
    """The FID Inception-v3 with weights from `path`, $PRISM_FID_WEIGHTS or the PRISM cache
    (see `find_weights`). The file's keys and shapes must match exactly (ValueError listing the
    differences). Files whose sha256 does not start with 6726825d load with a warning: their
    FID values are not comparable with published numbers."""
    weights = find_weights(path)
    model = FIDInceptionV3()
    state = check_state_dict(model, read_state_dict(weights), source=str(weights))
    model.load_state_dict(state, strict=True)
    sha = sha256(weights)
    if not sha.startswith(OFFICIAL_SHA256_PREFIX):
        warnings.warn(f"{weights}: sha256 {sha[:16]}... is not the official {WEIGHTS_FILENAME} "
                      f"(sha256 {OFFICIAL_SHA256_PREFIX}...); FID/KID/MiFID computed with it are not "
                      "comparable with published numbers", UserWarning, stacklevel=2)
    # names these features in PRISM's real-set cache without hashing 92 MB of tensors each time
    model.feature_id = f"fid-inception-v3:sha256={sha}"
    return model.to(device)
