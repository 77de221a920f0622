"""Importing models trained elsewhere as PRISM saved models.

pytorch-cyclegan: a generator state dict saved by junyanz/pytorch-CycleGAN-and-pix2pix
(`latest_net_G_A.pth`, `<name>_pretrained/latest_net_G.pth`): ResnetGenerator (`resnet_9blocks`,
`resnet_6blocks` or any block count; instance norm as CycleGAN trains it, or batch norm). Its keys load unchanged into PRISM's "resnet_generator"
(the same module layout), so the imported model computes exactly what the original does. The file
is read with torch.load(weights_only=True): a checkpoint that would run code is refused.
"""
from __future__ import annotations

import re
import time
from pathlib import Path

import torch

from prism import weights

from prism.nets.resnet_generator import ResnetGenerator

FORMATS = ("pytorch-cyclegan",)
REFERENCE = "junyanz/pytorch-CycleGAN-and-pix2pix"
_LEGACY_NORM_BUFFERS = ("running_mean", "running_var", "num_batches_tracked")


class ImportFormatError(ValueError):
    """The file is not a checkpoint of the format asked for; the message names the file and why."""


def import_model(fmt: str, path: str | Path, out_dir: str | Path, direction: str = "AtoB") -> Path:
    if fmt not in FORMATS:
        raise ImportFormatError(f"unknown import format '{fmt}'; available: {', '.join(FORMATS)}")
    return import_pytorch_cyclegan(path, out_dir, direction)


def import_pytorch_cyclegan(path: str | Path, out_dir: str | Path, direction: str = "AtoB") -> Path:
    """A reference ResnetGenerator state dict -> a PRISM "cyclegan" model translating `direction`
    (the reference's G_A maps A -> B: AtoB; its G_B: BtoA)."""
    from prism.modelio import save_model
    path = Path(path)
    if direction not in ("AtoB", "BtoA"):
        raise ImportFormatError(f"direction must be AtoB or BtoA, got {direction!r}")
    state = read_state_dict(path)
    spec = infer_resnet_spec(state, path)
    if spec["norm"] == "instance":  # stats old PyTorch stored for InstanceNorm; the reference drops them too
        state = {k: v for k, v in state.items() if not k.endswith(_LEGACY_NORM_BUFFERS)}
    net = ResnetGenerator(**spec)
    _check_layout(net, spec, state, path)
    net.load_state_dict(state, strict=True)
    name = "G_AB" if direction == "AtoB" else "G_BA"
    card = {
        "task": "cyclegan", "nets": {name: {"arch": "resnet_generator", **spec}},
        "options": {"directions": {direction: name}},
        "training": {"imported_from": REFERENCE, "file": path.name, "sha256": weights.sha256(path),
                     "date": time.strftime("%Y-%m-%d"), "torch": torch.__version__},
    }
    return save_model(out_dir, {name: net}, card)


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    try:
        return weights.read_state_dict(path, what="generator state dict")
    except (FileNotFoundError, ValueError) as e:
        raise ImportFormatError(str(e)) from None


def infer_resnet_spec(state: dict[str, torch.Tensor], path: Path) -> dict:
    """ngf, channels, number of residual blocks and dropout, read from the keys and shapes."""
    if any(k.startswith("model.model.") for k in state):
        raise ImportFormatError(f"{path}: this is a UnetGenerator (unet_256/unet_128) checkpoint; only the "
                                f"ResnetGenerator (resnet_9blocks / resnet_6blocks) is supported")
    first, blocks = state.get("model.1.weight"), {int(m.group(1)) for k in state
                                                   if (m := re.match(r"model\.(\d+)\.conv_block\.", k))}
    if first is None or first.dim() != 4 or first.shape[-1] != 7 or not blocks:
        hint = (" It looks like a discriminator (NLayerDiscriminator): import the generator, latest_net_G_A.pth."
                if "model.0.weight" in state else "")
        raise ImportFormatError(f"{path}: not a CycleGAN ResnetGenerator state dict (expected keys model.1.weight "
                                f"(7x7 conv) and model.<i>.conv_block.*; found {_preview(state)}).{hint}")
    # With dropout the second conv moves from conv_block.5 to .6 (with batch norm, .6 is that norm: 1-d)
    dropout = any(re.match(r"model\.\d+\.conv_block\.6\.weight$", k) and v.dim() == 4 for k, v in state.items())
    norm = "batch" if "model.2.weight" in state else "instance"  # --norm batch: affine norms, convs without bias
    return {"in_channels": int(first.shape[1]), "out_channels": int(_last_conv(state).shape[0]),
            "ngf": int(first.shape[0]), "n_blocks": len(blocks), "norm": norm, "dropout": 0.5 if dropout else 0.0}


def _last_conv(state: dict) -> torch.Tensor:
    indices = [int(m.group(1)) for k in state if (m := re.match(r"model\.(\d+)\.weight$", k))]
    return state[f"model.{max(indices)}.weight"]


def _check_layout(net: torch.nn.Module, spec: dict, state: dict, path: Path) -> None:
    expected = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in state.items()}
    missing, unexpected = sorted(expected.keys() - got.keys()), sorted(got.keys() - expected.keys())
    wrong = [f"{k} {got[k]} (expected {expected[k]})" for k in expected.keys() & got.keys() if got[k] != expected[k]]
    if missing or unexpected or wrong:
        parts = [f"missing {', '.join(missing[:5])}" if missing else "",
                 f"unexpected {', '.join(unexpected[:5])}" if unexpected else "",
                 f"wrong shape {'; '.join(sorted(wrong)[:5])}" if wrong else ""]
        raise ImportFormatError(f"{path}: does not match the reference ResnetGenerator layout "
                                f"(ngf={spec['ngf']}, {spec['n_blocks']} blocks): "
                                + "; ".join(p for p in parts if p))


def _preview(state: dict, n: int = 4) -> str:
    keys = list(state)
    return ", ".join(keys[:n]) + (f", ... ({len(keys)} keys)" if len(keys) > n else "")

