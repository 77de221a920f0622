"""Run by tests/test_distributed.py as a plain script: Fabric's launcher re-executes this file
once per extra rank. Trains a tiny colorizer (or, given a saved stylegan model as 6th argument, an
inversion encoder through that model's frozen G and D), then every rank writes its own weights."""
import sys
from pathlib import Path

import torch

from prism.tasks import resolve_config
from prism.train.trainer import Trainer

photos, runs, devices, batch, steps = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
generator = sys.argv[6] if len(sys.argv) > 6 else None
torch.set_num_threads(1)
train = {"steps": steps, "batch_size": batch, "devices": devices, "log_every": 1, "sample_every": 1000,
         "val_every": 1000, "ckpt_every": 1000}
if generator:
    cfg = resolve_config(None, {"generator": generator, "data": {"train": photos, "flip": False},
                                "nets": {"E": {"channels": [4, 8, 8, 8, 8]}}, "train": train},
                         base={"task": "stylegan_encoder"})
else:
    cfg = resolve_config(None, {
        "data": {"train": photos, "size": 32, "flip": False},
        # no BatchNorm and no dropout: then 2 ranks x batch b must equal 1 rank x batch 2b (up to
        # float summation order), since DDP averages the gradients of equal shards
        "nets": {"G": {"depth": 4, "width": 8, "norm": "instance", "dropout": 0.0},
                 "D": {"width": 8, "n_layers": 2, "norm": "instance"}},
        "loss": {"pretrain_steps": 1},
        "train": train,
    }, base={"task": "colorize"})
trainer = Trainer(cfg, runs_dir=runs, progress=False)
trainer.fit()
rank = trainer.fabric.global_rank
torch.save({n: trainer.task.plain(n).state_dict() for n in trainer.task.nets}, runs / f"weights-{devices}-rank{rank}.pt")
