"""Inference precision, one mechanism for every task: `prism.load_model(..., precision="bf16")`
runs each network's forward under torch.autocast and hands back float32, so predictors, the
projector and the web service never see the difference. Training precision is Fabric's
(`train.precision`: 32-true | bf16-mixed | 16-mixed, the last with a grad scaler on CUDA)."""
from __future__ import annotations

import functools

import torch

DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def check_precision(precision: str, device) -> torch.dtype | None:
    """The autocast dtype for `precision` on `device`, or a ValueError that says what to use."""
    if precision not in DTYPES:
        raise ValueError(f"precision must be one of {', '.join(DTYPES)}, got {precision!r}")
    if precision == "fp16" and torch.device(device).type != "cuda":
        raise ValueError("fp16 inference needs a CUDA device (--device cuda); on CPU use bf16 or fp32")
    return DTYPES[precision]


def apply_precision(nets: dict, precision: str, device) -> None:
    """Wrap each network's forward in autocast (outputs cast back to float32). fp32: no change."""
    dtype = check_precision(precision, device)
    if dtype is None:
        return
    device_type = torch.device(device).type
    for net in nets.values():
        if not isinstance(net, torch.nn.Module):
            raise ValueError(f"precision {precision} needs a PyTorch model; ONNX models run in fp32")
        net.forward = _autocast_forward(net.forward, device_type, dtype)


def _autocast_forward(forward, device_type: str, dtype: torch.dtype):
    @functools.wraps(forward)
    def run(*args, **kwargs):
        with torch.autocast(device_type, dtype=dtype):
            return _to_float(forward(*args, **kwargs))
    return run


def _to_float(out):
    if isinstance(out, torch.Tensor):
        return out.float() if out.is_floating_point() else out
    if isinstance(out, (tuple, list)):
        return type(out)(_to_float(o) for o in out)
    if isinstance(out, dict):
        return {k: _to_float(v) for k, v in out.items()}
    return out
