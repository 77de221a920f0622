"""Run by tests/test_faults.py as `RANK1_DIES_AT=STEP RANK1_SIGNAL=KILL|STOP python rank_dies_run.py
train ...`: the `prism` command line, except that rank 1 sends itself SIGKILL (dies, no cleanup) or
SIGSTOP (hangs) when it reaches STEP. Fabric's launcher re-executes this script (same arguments and
environment) for rank 1."""
import os
import signal
import time

from prism.cli import app
from prism.train.trainer import Trainer

DIE_AT = int(os.environ["RANK1_DIES_AT"])
SIGNAL = getattr(signal, "SIG" + os.environ.get("RANK1_SIGNAL", "KILL"))
run_phase = Trainer._run_phase


BUSY_S = float(os.environ.get("RANK0_BUSY_S", 0))  # rank 0 works alone this long at STEP (no collective)


def run_phase_or_die(self, phase, batch, state):
    global BUSY_S
    if self.fabric.global_rank == 1 and self.step == DIE_AT:
        os.kill(os.getpid(), SIGNAL)
    if self.fabric.global_rank == 0 and self.step == DIE_AT and BUSY_S:
        time.sleep(BUSY_S)
        BUSY_S = 0
    return run_phase(self, phase, batch, state)


Trainer._run_phase = run_phase_or_die
app(prog_name="prism")
