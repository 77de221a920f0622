"""ONNX export of any PRISM generator, and an onnxruntime-backed stand-in for it.

The exported file carries the model card in its metadata, so `prism.load_model("g.onnx")` builds
the same predictor as for the PyTorch model (the predictor only calls the network), with the
network run by onnxruntime instead of torch. Spatial size is dynamic in multiples of the
network's `size_multiple`; batch is dynamic.
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch

CARD_KEY = "prism_card"


def export_onnx(model: str | Path | None, out_file: str | Path, net: str | None = None, opset: int = 18,
                sample_size: int = 256) -> Path:
    from prism.modelio import load_nets
    nets, card = load_nets(model)
    name = net or next(iter(card["nets"]))
    if name not in nets:
        raise ValueError(f"network '{name}' not in this model; it has: {', '.join(nets)}")
    module = nets[name].eval()
    spec = card["nets"][name]
    m = getattr(module, "size_multiple", 1)
    size = max(m, sample_size // m * m)
    x = torch.randn(1, spec.get("in_channels", 3), size, size)
    dim = torch.export.Dim
    shapes = {"x": {0: dim("batch", min=1, max=1024), 2: dim("h", min=1, max=16384 // m) * m,
                    3: dim("w", min=1, max=16384 // m) * m}}
    out_file = Path(out_file)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(module, (x,), dynamo=True, dynamic_shapes=shapes, opset_version=opset,
                                    input_names=["input"], output_names=["output"], verbose=False)
    one_net_card = {**card, "nets": {name: spec}, "onnx": {"net": name, "size_multiple": m, "opset": opset}}
    program.model.metadata_props[CARD_KEY] = json.dumps(one_net_card)
    program.save(str(out_file))
    return out_file


class OnnxGenerator:
    """Callable like the torch generator it was exported from: (B,C,H,W) tensor -> tensor."""

    def __init__(self, path: str | Path, threads: int = 0):
        try:
            import onnxruntime as ort
        except ImportError:
            raise ImportError("the onnxruntime backend needs: pip install onnxruntime") from None
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.card = read_card(path, self.session)
        self.size_multiple = self.card["onnx"]["size_multiple"]
        self.device = torch.device("cpu")
        self.input_name = self.session.get_inputs()[0].name

    def eval(self):
        return self

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        out = self.session.run(None, {self.input_name: x.detach().float().cpu().numpy()})[0]
        return torch.from_numpy(out)


def read_card(path: str | Path, session=None) -> dict:
    if session is None:
        import onnx
        meta = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    else:
        meta = session.get_modelmeta().custom_metadata_map
    if CARD_KEY not in meta:
        raise ValueError(f"{path}: not a PRISM ONNX export (no '{CARD_KEY}' metadata); export one with "
                         f"prism export --format onnx")
    return json.loads(meta[CARD_KEY])


def load_onnx(path: str | Path) -> tuple[dict, dict]:
    gen = OnnxGenerator(path)
    return {gen.card["onnx"]["net"]: gen}, gen.card
