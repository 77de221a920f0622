"""The contract between a task and the shared trainer, model format and inference API.

A task says *what* to train — its networks, datasets, optimisation phases, validation metrics,
sample pictures and predictor — and nothing about *how* (devices, precision, logging, resume,
checkpoints), which the trainer owns. To add a task, copy tasks/colorize.py.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn as nn

# Keys every config has, whatever the task. Tasks add their own sections ("data", "loss", ...).
TRAINER_DEFAULTS = {
    "task": None,
    "name": None,                 # run directory suffix; defaults to the config file's stem
    "seed": 0,
    "nets": {},                   # name -> {"arch": registered network, **kwargs}
    "optim": {},                  # net name -> {lr, betas, weight_decay}
    "train": {
        "steps": 1000,
        "batch_size": 8,
        "num_workers": 0,
        "accelerator": "cpu",     # cpu | cuda | gpu | auto
        "devices": 1,
        "num_nodes": 1,
        "precision": "32-true",   # 32-true | bf16-mixed | 16-mixed
        "lr_schedule": "constant",  # constant | linear_decay (to 0 from decay_start)
        "decay_start": 0.5,       # fraction of steps
        "ema": 0.0,               # decay of the generator EMA (warmed up as min(ema, (1+k)/(10+k))); 0 = off
        "ema_start": 0,
        "log_every": 10,          # these four: also at the last step; 0 = only there
        "sample_every": 200,
        "val_every": 500,
        "ckpt_every": 200,
        "keep_every": 0,          # also keep step-N checkpoints every K steps; 0 = never
        "best_metric": None,      # a validation metric name; defaults to the task's
        "best_mode": None,        # max | min
        "val_batches": 0,         # 0 = whole validation set
        "torch_threads": 0,       # 0 = torch's default
        "sync_batchnorm": True,   # several GPUs: BatchNorm statistics over all ranks (torch supports it on GPU only)
        "collective_timeout_s": 1800,  # several processes: a rank that waits this long on the others fails
        "init_from": None,        # a saved model, run or checkpoint whose weights the nets start from (not on resume)
    },
}


@dataclass
class Phase:
    """One optimisation step inside a training step (stylegan2-ada's named phases).

    fn(batch, state) -> (loss, logs); `state` is a dict shared by the phases of one step (e.g.
    the generator output computed once, with its graph, by the D phase and reused by the G phase).
    The trainer zeroes `optimizer`'s grads, turns off grads of the `frozen` nets (the
    discriminator during a generator step: gradients flow through it, its weights get none),
    runs backward and steps. Active when start <= step < stop and (step - start) % every == 0.
    """
    name: str
    optimizer: str
    fn: Callable
    frozen: tuple[str, ...] = ()
    every: int = 1
    start: int = 0
    stop: int | None = None

    def active(self, step: int) -> bool:
        return self.start <= step and (self.stop is None or step < self.stop) and (step - self.start) % self.every == 0


class Task:
    name = "base"
    defaults: dict = {}       # this task's config sections, merged over TRAINER_DEFAULTS
    inference_nets = ("G",)   # saved in the model; EMA copies replace them when present
    ema_nets = None           # nets the trainer keeps an EMA of (train.ema > 0); None = inference_nets
    best_metric = None        # (metric, "max" | "min") the trainer keeps the best checkpoint by

    def __init__(self, cfg: dict):
        self.cfg = cfg
        self.nets: dict[str, nn.Module] = {}  # filled by the trainer (possibly engine-wrapped)

    # --- what the task must provide -------------------------------------------------------
    def build_networks(self) -> dict[str, nn.Module]:
        from prism.registry import build_network
        return {name: build_network(spec) for name, spec in self.cfg["nets"].items() if spec}

    def build_optimizers(self, nets: dict[str, nn.Module]) -> dict[str, torch.optim.Optimizer]:
        opts = {}
        for name, o in self.cfg["optim"].items():
            if not o or not all(n in nets for n in self.optimizer_nets(name)):
                continue
            lr = o.get("lr", 2e-4)
            betas = tuple(float(b) for b in o.get("betas", (0.5, 0.999)))  # YAML may say [0, 0.999]
            groups = _param_groups([nets[n] for n in o.get("nets", [name])], lr, o.get("lr_scale") or {})
            opts[name] = torch.optim.Adam(groups, lr=lr, betas=betas, weight_decay=o.get("weight_decay", 0.0))
        return opts

    def train_dataset(self):
        raise NotImplementedError

    def val_dataset(self):
        return None

    def phases(self) -> list[Phase]:
        raise NotImplementedError

    @torch.no_grad()
    def sample_grid(self, batch: dict) -> torch.Tensor:
        """A (3,H,W) picture of the current outputs on a fixed validation batch."""
        raise NotImplementedError

    @torch.no_grad()
    def validate(self, batches) -> dict[str, float]:
        return {}

    def card(self) -> dict:
        """Task-specific entries of the model card (e.g. render size)."""
        return {}

    @classmethod
    def evaluate(cls, predictor, data, **kwargs) -> dict:
        """Score a predictor on a folder for `prism eval` (see prism.evaluation)."""
        raise NotImplementedError

    def state_dict(self) -> dict:
        """Training state the task keeps outside its networks (e.g. CycleGAN's image history
        pool): tensors, numbers, lists and dicts only. Saved in every checkpoint."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass

    @classmethod
    def predictor(cls, nets: dict[str, nn.Module], card: dict):
        """The inference object returned by prism.load_model for this task's models."""
        raise NotImplementedError

    # --- helpers ------------------------------------------------------------------------------
    def optimizer_nets(self, optimizer: str) -> list[str]:
        return list((self.cfg["optim"].get(optimizer) or {}).get("nets", [optimizer]))

    def eval_net(self, name: str) -> nn.Module:
        """The EMA copy when the run keeps one, else the trained network, unwrapped."""
        return getattr(self, "ema", {}).get(name) or self.plain(name)

    def plain(self, name: str) -> nn.Module:
        """The unwrapped network (no DDP/Fabric wrapper): for evaluation on one process."""
        net = self.nets[name]
        return getattr(net, "module", net)

    def frozen_module(self, name: str, build: Callable[[], nn.Module], device) -> nn.Module:
        """A fixed network a loss reads (e.g. prism.losses.PerceptualLoss): built on first use, so
        runs without that loss never load it; not trained, not checkpointed, not exported."""
        helpers = self.__dict__.setdefault("_frozen_modules", {})
        if name not in helpers:
            helpers[name] = build()
        return helpers[name].to(device)

    def to_device(self, batch: dict) -> dict:
        dev = next(self.plain(next(iter(self.nets))).parameters()).device
        return {k: v.to(dev, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def _param_groups(modules, lr: float, lr_scale: dict) -> list[dict]:
    """One Adam group per lr_scale prefix (e.g. {encoder: 0.1}: a pretrained encoder fine-tuned
    at a tenth of the rate), the rest at lr. Parameter names are relative to each net."""
    groups = {prefix: [] for prefix in lr_scale}
    rest = []
    for m in modules:
        for pname, p in m.named_parameters():
            prefix = next((k for k in lr_scale if pname == k or pname.startswith(k + ".")), None)
            (groups[prefix] if prefix is not None else rest).append(p)
    for prefix, params in groups.items():
        if not params:
            from prism.config import ConfigError
            raise ConfigError(f"optim lr_scale names '{prefix}', which matches no parameter of the network")
    return [{"params": rest, "lr": lr}] + [{"params": ps, "lr": lr * float(lr_scale[k])} for k, ps in groups.items()]

