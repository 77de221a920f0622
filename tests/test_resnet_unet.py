import pytest
import torch

from prism.nets.resnet_unet import ResNetUNet
from prism.registry import NETWORKS

BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def torchvision_resnet18_shapes(in_ch: int = 3) -> dict[str, tuple]:
    """Key -> shape of torchvision.models.resnet18().state_dict(), written out by hand."""
    shapes = {"conv1.weight": (64, in_ch, 7, 7)}
    shapes.update({f"bn1.{p}": (64,) for p in BN})
    prev = 64
    for li, ch in enumerate((64, 128, 256, 512), start=1):
        for b in (0, 1):
            pre, cin = f"layer{li}.{b}", prev if b == 0 else ch
            shapes[f"{pre}.conv1.weight"] = (ch, cin, 3, 3)
            shapes.update({f"{pre}.bn1.{p}": (ch,) for p in BN})
            shapes[f"{pre}.conv2.weight"] = (ch, ch, 3, 3)
            shapes.update({f"{pre}.bn2.{p}": (ch,) for p in BN})
            if b == 0 and li > 1:
                shapes[f"{pre}.downsample.0.weight"] = (ch, cin, 1, 1)
                shapes.update({f"{pre}.downsample.1.{p}": (ch,) for p in BN})
        prev = ch
    return {k: (() if k.endswith("num_batches_tracked") else s) for k, s in shapes.items()}


def fake_torchvision_sd(in_ch: int = 3) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    sd = {}
    for k, s in torchvision_resnet18_shapes(in_ch).items():
        if k.endswith("num_batches_tracked"):
            sd[k] = torch.tensor(7)
        elif k.endswith("running_var"):
            sd[k] = torch.rand(s, generator=g) + 0.5
        else:
            sd[k] = torch.randn(s, generator=g)
    sd["fc.weight"] = torch.randn(1000, 512, generator=g)
    sd["fc.bias"] = torch.randn(1000, generator=g)
    return sd


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return ResNetUNet(decoder_width=64).eval()


@pytest.mark.parametrize("hw", [(64, 64), (96, 128), (256, 256)])
def test_output_shape_and_range(model, hw):
    with torch.no_grad():
        y = model(torch.randn(1, 1, *hw))
    assert y.shape == (1, 2, *hw)
    assert y.abs().max() <= 1


def test_train_mode_backward_instance_norm_dropout():
    net = ResNetUNet(in_channels=1, out_channels=2, decoder_width=64, norm="instance",
                     dropout=0.5).train()
    y = net(torch.randn(2, 1, 64, 64))
    y.mean().backward()
    assert net.encoder.conv1.weight.grad is not None


def test_rejects_size_not_multiple_of_32(model):
    assert ResNetUNet.size_multiple == 32 and model.size_multiple == 32
    with pytest.raises(ValueError, match="divisible by 32, got 100x100"):
        model(torch.randn(1, 1, 100, 100))


def test_registered():
    assert NETWORKS["resnet_unet"] is ResNetUNet


def test_encoder_keys_match_torchvision(model):
    expected = torchvision_resnet18_shapes(in_ch=1)
    sd = model.encoder.state_dict()
    assert list(sd.keys()) == list(expected.keys())  # same order too, like torchvision
    assert {k: tuple(v.shape) for k, v in sd.items()} == expected


def test_load_torchvision_layout_roundtrip(tmp_path):
    saved = fake_torchvision_sd(in_ch=3)
    path = tmp_path / "resnet18.pth"
    torch.save(saved, path)
    net = ResNetUNet(in_channels=1, decoder_width=32)
    net.load_encoder_weights(path)
    enc = net.encoder.state_dict()
    assert torch.equal(enc["conv1.weight"], saved["conv1.weight"].sum(1, keepdim=True))
    assert torch.equal(enc["layer4.1.bn2.running_var"], saved["layer4.1.bn2.running_var"])
    assert torch.equal(enc["layer2.0.downsample.0.weight"], saved["layer2.0.downsample.0.weight"])


def test_constructor_loads_safetensors_without_num_batches_tracked(tmp_path):
    from safetensors.torch import save_file
    saved = {k: v for k, v in fake_torchvision_sd().items()
             if not k.endswith("num_batches_tracked")}  # like old torchvision checkpoints
    path = tmp_path / "resnet18.safetensors"
    save_file(saved, str(path))
    net = ResNetUNet(decoder_width=32, pretrained_encoder=str(path))
    assert torch.equal(net.encoder.layer1[0].bn1.weight, saved["layer1.0.bn1.weight"])
    assert int(net.encoder.bn1.num_batches_tracked) == 0


def test_corrupt_file_raises_value_error(tmp_path):
    path = tmp_path / "broken.pth"
    path.write_bytes(b"this is not a checkpoint")
    with pytest.raises(ValueError, match="broken.pth"):
        ResNetUNet(decoder_width=32).load_encoder_weights(path)


def test_mismatched_keys_raise_value_error_listing_them(tmp_path):
    sd = fake_torchvision_sd()
    del sd["layer3.1.conv2.weight"]
    sd["layer5.0.conv1.weight"] = torch.zeros(1)
    sd["layer1.0.conv1.weight"] = torch.zeros(64, 64, 1, 1)
    path = tmp_path / "mismatch.pth"
    torch.save(sd, path)
    with pytest.raises(ValueError) as info:
        ResNetUNet(decoder_width=32).load_encoder_weights(path)
    msg = str(info.value)
    assert str(path) in msg
    assert "layer3.1.conv2.weight" in msg and "layer5.0.conv1.weight" in msg
    assert "layer1.0.conv1.weight" in msg


def test_missing_file_raises_file_not_found(tmp_path):
    path = tmp_path / "nope.pth"
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        ResNetUNet(decoder_width=32).load_encoder_weights(path)
