"""U-Net generator with a from-scratch ResNet-18 encoder (pix2pix colorization: L -> ab, tanh).

The encoder mirrors torchvision's resnet18 attribute names exactly so an ImageNet checkpoint
(resnet18-*.pth or .safetensors) loads with strict key checking, without importing torchvision."""
from __future__ import annotations


import torch
from torch import nn

from prism.registry import NETWORKS


class BasicBlock(nn.Module):
    """Same layout and names as torchvision.models.resnet.BasicBlock."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.downsample = None
        if stride != 1 or in_ch != out_ch:  # torchvision: Sequential(conv1x1, bn) -> keys .0/.1
            self.downsample = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride, bias=False),
                                            nn.BatchNorm2d(out_ch))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + identity)


class ResNet18Encoder(nn.Module):
    """ResNet-18 without avgpool/fc; returns features at strides 2, 4, 8, 16, 32."""

    channels = (64, 64, 128, 256, 512)

    def __init__(self, in_channels: int = 3):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = nn.Sequential(BasicBlock(64, 64), BasicBlock(64, 64))
        self.layer2 = nn.Sequential(BasicBlock(64, 128, 2), BasicBlock(128, 128))
        self.layer3 = nn.Sequential(BasicBlock(128, 256, 2), BasicBlock(256, 256))
        self.layer4 = nn.Sequential(BasicBlock(256, 512, 2), BasicBlock(512, 512))
        for m in self.modules():  # torchvision's init, so training from scratch behaves the same
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        f2 = self.relu(self.bn1(self.conv1(x)))
        f4 = self.layer1(self.maxpool(f2))
        f8 = self.layer2(f4)
        f16 = self.layer3(f8)
        return [f2, f4, f8, f16, self.layer4(f16)]


def _norm(kind: str, ch: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(ch)
    if kind == "instance":
        return nn.InstanceNorm2d(ch, affine=True)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"norm must be 'batch', 'instance' or 'none', got {kind!r}")


def _conv_block(in_ch: int, out_ch: int, norm: str) -> list[nn.Module]:
    return [nn.Conv2d(in_ch, out_ch, 3, 1, 1, bias=norm == "none"), _norm(norm, out_ch),
            nn.ReLU(inplace=True)]


class UpStage(nn.Module):
    """Bilinear x2 + 3x3 conv (no transposed conv -> no checkerboard), concat skip, 3x3 conv."""

    def __init__(self, in_ch: int, skip_ch: int, out_ch: int, norm: str, dropout: float):
        super().__init__()
        self.up = nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                                *_conv_block(in_ch, out_ch, norm))
        self.fuse = nn.Sequential(*_conv_block(out_ch + skip_ch, out_ch, norm),
                                  nn.Dropout(dropout) if dropout > 0 else nn.Identity())

    def forward(self, x, skip):
        return self.fuse(torch.cat([self.up(x), skip], dim=1))


@NETWORKS.register("resnet_unet")
class ResNetUNet(nn.Module):
    size_multiple = 32  # five stride-2 stages; inference pads inputs to this

    def __init__(self, in_channels: int = 1, out_channels: int = 2, decoder_width: int = 256,
                 norm: str = "batch", dropout: float = 0.0, pretrained_encoder: str | None = None):
        super().__init__()
        _norm(norm, 1)  # validate early with a clear message
        self.in_channels = in_channels
        self.encoder = ResNet18Encoder(in_channels)
        # deepest stage first: skips at strides 16, 8, 4, 2, then the raw input at full
        # resolution (keeps fine L-channel edges that the stride-2 stem throws away)
        skips = list(self.encoder.channels[:4][::-1]) + [in_channels]
        widths = [max(32, decoder_width >> i) for i in range(5)]
        stages, prev = [], self.encoder.channels[4]
        for i, (skip_ch, w) in enumerate(zip(skips, widths)):
            # pix2pix-style dropout only in the three deepest decoder stages
            stages.append(UpStage(prev, skip_ch, w, norm, dropout if i < 3 else 0.0))
            prev = w
        self.decoder = nn.ModuleList(stages)
        self.head = nn.Conv2d(prev, out_channels, 1)
        if pretrained_encoder:
            self.load_encoder_weights(pretrained_encoder)

    def forward(self, x):
        h, w = x.shape[-2:]
        if h % 32 or w % 32:
            raise ValueError(f"ResNetUNet needs height and width divisible by 32, got {h}x{w}; "
                             "resize or pad the input")
        feats = self.encoder(x)
        y = feats[-1]
        for stage, skip in zip(self.decoder, feats[-2::-1] + [x]):
            y = stage(y, skip)
        return torch.tanh(self.head(y))

    def load_encoder_weights(self, path) -> None:
        """Load a torchvision-layout resnet18 state dict (.pth or .safetensors) into the encoder.
        fc.* is dropped; a 3-channel conv1 is folded to in_channels by summing over RGB (a gray
        image fed as R=G=B then gives the same stem response); everything else must match."""
        from prism.weights import load_matching, read_state_dict
        sd = read_state_dict(path, what="resnet18 state dict")
        sd = {k: v for k, v in sd.items() if not k.startswith("fc.")}
        own = self.encoder.state_dict()
        w = sd.get("conv1.weight")
        if w is not None and w.ndim == 4 and w.shape[1] != self.in_channels:
            # sum over RGB, spread evenly over the new channels (k=1: plain sum)
            sd["conv1.weight"] = (w.sum(1, keepdim=True) / self.in_channels).repeat(
                1, self.in_channels, 1, 1)
        for k in own:  # old torchvision checkpoints predate BatchNorm.num_batches_tracked
            if k.endswith("num_batches_tracked") and k not in sd:
                sd[k] = torch.zeros_like(own[k])
        load_matching(self.encoder, sd, path, "a resnet18 state dict matching this encoder")
