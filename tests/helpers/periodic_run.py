"""Run by tests/test_distributed_periodic.py as a plain script (Fabric's launcher re-executes it
once per extra rank): train the resolved config in argv[1] (JSON) into the runs folder argv[2];
with --save-ranks every rank then saves its own weights as RUNS/weights-rank{N}.pt."""
import json
import sys

import torch

from prism.train.trainer import Trainer

torch.set_num_threads(1)
cfg = json.loads(open(sys.argv[1]).read())
trainer = Trainer(cfg, runs_dir=sys.argv[2], progress=False)
trainer.fit()
if "--save-ranks" in sys.argv:
    torch.save({n: trainer.task.plain(n).state_dict() for n in trainer.task.nets},
               f"{sys.argv[2]}/weights-rank{trainer.fabric.global_rank}.pt")
