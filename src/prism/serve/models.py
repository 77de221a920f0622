"""The models a server offers, loaded once at start-up and looked up by name only.

Requests name a model; the name is a key in `ModelStore.models` and nothing else, so no request
ever builds a file path. Models come from the package's bundled directory and the operator's
`--models DIR` (each direct subdirectory with a card.json, which must really lie inside DIR).
Only saved models are served: they are safetensors files rebuilt from their card, never
unpickled. Training run directories (pickled checkpoints) are skipped on purpose.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from prism import modelio

log = logging.getLogger("prism.serve")


@dataclass
class ServedModel:
    name: str
    task: str
    source: str        # "bundled" | "models_dir"
    predictor: object  # the task's predictor, e.g. a Colorizer
    card: dict

    def summary(self) -> dict:
        """What clients may see of a card: no training config, which holds local file paths."""
        card, training = self.card, self.card.get("training", {})
        return {"name": self.name, "task": self.task, "source": self.source,
                "networks": {n: s.get("arch") for n, s in card.get("nets", {}).items()},
                "options": card.get("options", {}), "metrics": card.get("metrics", {}),
                "steps": training.get("steps"), "license": card.get("license")}


class ModelStore:
    def __init__(self, models: list[ServedModel], skipped: dict[str, str] | None = None):
        self.models = {m.name: m for m in models}
        self.skipped = skipped or {}  # name -> why it was not loaded (logged, not served)

    def tasks(self) -> list[str]:
        return sorted({m.task for m in self.models.values()})

    def names(self, task: str) -> list[str]:
        return sorted(n for n, m in self.models.items() if m.task == task)

    def default(self, task: str) -> str | None:
        names = self.names(task)
        return modelio.DEFAULT_MODEL if modelio.DEFAULT_MODEL in names else (names[0] if names else None)

    def get(self, name: str) -> ServedModel | None:
        # a plain dict lookup: "../x" or "/etc/passwd" are just names that are not there
        return self.models.get(name) if isinstance(name, str) else None

    @classmethod
    def discover(cls, models_dir: Path | None = None, bundled: bool = True, device: str = "cpu") -> "ModelStore":
        """Load every servable model; a broken one is logged and skipped so the rest still serve.
        A model in `models_dir` shadows a bundled one of the same name (the operator chose it)."""
        found: dict[str, tuple[Path, str]] = {}
        if bundled:
            for name in modelio.bundled_models():
                found[name] = (modelio.BUNDLED_DIR / name, "bundled")
        if models_dir is not None:
            for name, path in _model_dirs(Path(models_dir)).items():
                found[name] = (path, "models_dir")
        models, skipped = [], {}
        for name, (path, source) in sorted(found.items()):
            try:
                models.append(_load(name, path, source, device))
            except Exception as e:  # noqa: BLE001 - one bad model must not take the service down
                log.warning("model %s (%s) not loaded: %s", name, path, e)
                skipped[name] = str(e)
        return cls(models, skipped)


def _model_dirs(root: Path) -> dict[str, Path]:
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: models directory not found")
    real_root = root.resolve()
    dirs = {}
    for sub in sorted(root.iterdir()):
        if not (sub / modelio.CARD).is_file():
            continue  # not a saved model (a run directory, notes, ...): never loaded
        if not all(p.resolve().is_relative_to(real_root) for p in (sub, sub / modelio.CARD, sub / modelio.WEIGHTS)):
            log.warning("model %s skipped: it links outside %s", sub.name, root)
            continue
        dirs[sub.name] = sub
    return dirs


def _load(name: str, path: Path, source: str, device: str) -> ServedModel:
    kind, resolved = modelio.resolve(path)
    if kind != "model":  # resolve() could also accept a run directory: those hold pickles
        raise modelio.ModelError(f"{path}: not a saved model")
    predictor = modelio.load_model(resolved, device=device)
    return ServedModel(name, predictor.task, source, predictor, predictor.card)
