"""What a rank says when another one is lost (crashed, killed, or hung past
train.collective_timeout_s): one line naming the last good checkpoint and how to resume, instead
of the communication backend's traceback (benchmarks/fault_injection.py, docs/scale.md)."""
from __future__ import annotations

import os
import re
import threading
import traceback
from pathlib import Path

import torch

from prism.train import checkpoint as ckpt

_PEER_LOST = re.compile(r"gloo|nccl|connection (reset|closed|refused)|broken pipe|timed? ?out|pair closure|socket",
                        re.IGNORECASE)


def lost_peer(error: Exception) -> bool:
    """The error of a collective whose peer is gone or timed out (gloo, NCCL, the TCP store): a
    torch.distributed error, a backend message (gloo's 'Connection reset by peer', 'Application
    timeout caused pair closure', ...) or a RuntimeError raised in torch.distributed's own code."""
    if isinstance(error, torch.distributed.DistError):
        return True
    if not isinstance(error, RuntimeError):
        return False
    frames = traceback.extract_tb(error.__traceback__)
    last = frames[-1].filename.replace(os.sep, "/") if frames else ""
    return bool(_PEER_LOST.search(str(error))) or "torch/distributed/" in last or last.endswith("nn/parallel/distributed.py")


def first_line(error: Exception) -> str:
    """The backend's first line, without its source location ('[/path/pair.cc:537] Read error ...')
    and with no square brackets left (the CLI prints messages as rich markup)."""
    line = (str(error).strip().splitlines() or [""])[0]
    return re.sub(r"^\[[^\]]*\]\s*", "", line).replace("[", "(").replace("]", ")")


def peer_lost_message(rank: int, world_size: int, timeout_s, run_dir: Path | None, cause: str) -> str:
    """Which rank stopped, where the last good checkpoint is and how to resume (cause: the
    backend's first line)."""
    last = ckpt.find_checkpoint(run_dir) if run_dir else None
    resume = (f"Resume with: prism train --resume {run_dir}" if last else
              "No checkpoint was written yet: start the run again")
    return (f"Training stopped on rank {rank} of {world_size}: another process stopped answering (it crashed, was "
            f"killed, or hung longer than train.collective_timeout_s={timeout_s}). The last good checkpoint is "
            f"kept: {last or '(none was written yet)'}. {resume}.\n({cause})")


def before_fabric_kills(explain) -> None:
    """Rank 0 under Fabric's own launcher: its observer thread polls the child ranks every 5 s and
    SIGKILLs every process once one has died, which can come before the failed collective reaches
    rank 0 (e.g. while rank 0 validates alone). explain(child exit codes) runs just before that
    kill. Relies on Fabric's private observer thread; tests/test_faults.py catches a change."""
    for thread in threading.enumerate():
        terminate = getattr(thread, "_terminate_all", None)
        if thread.name != "child-process-observer" or terminate is None:
            continue

        def explain_then_terminate(thread=thread, terminate=terminate):
            explain([p.returncode for p in getattr(thread, "_child_processes", [])])
            terminate()
        thread._terminate_all = explain_then_terminate
