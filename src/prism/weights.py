"""Reading weight files made elsewhere (torchvision resnet18, the FID Inception, LPIPS, a
pytorch-CycleGAN-and-pix2pix checkpoint): one safe reader, so every such file gets the same
checks and the same clear errors. PRISM's own models and checkpoints have their own formats
(prism.modelio, prism.train.checkpoint)."""
from __future__ import annotations

import hashlib
from pathlib import Path

import torch


def read_state_dict(path, what: str = "state dict") -> dict[str, torch.Tensor]:
    """A .pth/.pt (torch.load with weights_only=True: a file that would run code is refused) or
    .safetensors file -> {name: tensor}. Unwraps {"state_dict": ...} and strips DataParallel's
    "module." prefix. FileNotFoundError if absent; ValueError naming the file otherwise."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file
            obj = load_file(str(path), device="cpu")
        else:
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # not a torch file, truncated, or a pickle that would run code
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(f"{path}: not a PyTorch state dict that loads without running code "
                         f"({type(e).__name__}: {reason[:200]})") from None
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        found = (type(obj).__name__ if not isinstance(obj, dict) else
                 "a dict holding non-tensor values" if obj else "an empty dict")
        raise ValueError(f"{path}: expected a {what} (parameter name -> tensor), got {found}")
    return {k[len("module."):] if k.startswith("module.") else k: v for k, v in obj.items()}


def load_matching(module: torch.nn.Module, state: dict[str, torch.Tensor], source, what: str) -> None:
    """Load `state` into `module` only if its keys and shapes match exactly; otherwise ValueError:
    "{source} is not {what}", with the missing, unexpected and wrongly shaped keys (8 of each)."""
    own = module.state_dict()
    missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    bad = [f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
           for k in own if k in state and state[k].shape != own[k].shape]
    if missing or unexpected or bad:
        raise ValueError(f"{source} is not {what}; missing keys: {missing[:8]}; unexpected keys: "
                         f"{unexpected[:8]}; shape mismatches: {bad[:8]}")
    module.load_state_dict(state, strict=True)


def sha256(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
