"""Faults on several processes: a rank that dies must stop the others with a clear message, soon
(not after train.collective_timeout_s, and never a hang), and the run must resume from its last
good checkpoint. The kill -9 campaign with figures is benchmarks/fault_injection.py."""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from conftest import tiny_colorize_config

HELPER = Path(__file__).parent / "helpers" / "rank_dies_run.py"
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}


@pytest.mark.parametrize("fault, rank0_busy_s, code", [("KILL", 0, 1), ("STOP", 0, 1), ("KILL", 12, -9)])
def test_a_lost_rank_stops_the_other_with_a_clear_message_and_the_run_resumes(fault, rank0_busy_s, code,
                                                                              photo_folder, tmp_path):
    """Rank 1 killed (its socket closes: rank 0 fails at once), stopped (a hung rank: rank 0 fails
    after train.collective_timeout_s), or killed while rank 0 works alone for 12 s (Fabric's launcher
    notices the dead child within 5 s and SIGKILLs rank 0): rank 0 exits with one clear line."""
    timeout_s = 10
    cfg = tiny_colorize_config(photo_folder, steps=8, batch_size=2, log_every=1, ckpt_every=2, sample_every=0,
                               val_every=0, collective_timeout_s=timeout_s, torch_threads=1, num_workers=0)
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    runs, log = tmp_path / "runs", tmp_path / "out.txt"
    args = ["train", "--config", str(tmp_path / "cfg.yaml"), "--runs-dir", str(runs), "--no-progress", "--devices", "2"]
    with open(log, "wb") as out:  # a stopped rank 1 would hold a pipe open: a file, and its own process group
        job = subprocess.Popen([sys.executable, str(HELPER), *args], stdout=out, stderr=subprocess.STDOUT,
                               env={**ENV, "RANK1_DIES_AT": "5", "RANK1_SIGNAL": fault, "RANK0_BUSY_S": str(rank0_busy_s)},
                               start_new_session=True)
        try:
            rc = job.wait(600)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(job.pid, signal.SIGKILL)  # the stopped rank 1
            job.wait()
    text = log.read_text()
    (run,) = sorted(runs.glob("0*"))
    assert rc == code, text[-3000:]
    assert "Training stopped on rank 0 of 2: another process stopped answering" in text, text[-3000:]
    assert f"Resume with: prism train --resume {run}" in text, text[-3000:]
    assert "[rank0]: Traceback" not in text, text[-3000:]
    assert torch.load(run / "checkpoints" / "latest.pt", weights_only=True)["step"] == 4

    resumed = subprocess.run([sys.executable, "-m", "prism.cli", "train", "--resume", str(run), "--no-progress"],
                             capture_output=True, text=True, env=ENV, timeout=600)
    assert resumed.returncode == 0, (resumed.stdout + resumed.stderr)[-3000:]
    assert torch.load(run / "checkpoints" / "latest.pt", weights_only=True)["step"] == 8


@pytest.mark.parametrize("message", [
    "[/pytorch/third_party/gloo/gloo/transport/tcp/pair.cc:537] Read error [127.0.0.1]:26307: Connection reset by peer",
    "Application timeout caused pair closure",  # gloo, a peer hung past the timeout
    "[/pytorch/third_party/gloo/gloo/transport/tcp/unbound_buffer.cc:81] Timed out waiting 20000ms for recv operation"])
def test_backend_errors_of_a_lost_peer_are_recognised(message):
    from prism.train.faults import first_line as _first_line, lost_peer as _lost_peer
    assert _lost_peer(RuntimeError(message))
    assert "[" not in _first_line(RuntimeError(message))  # the CLI prints rich markup


def test_other_errors_are_not_taken_for_a_lost_peer():
    from prism.train.faults import lost_peer as _lost_peer
    assert not _lost_peer(RuntimeError("mat1 and mat2 shapes cannot be multiplied (4x3 and 5x6)"))
    assert not _lost_peer(ValueError("gloo"))


def test_resume_removes_the_temporary_file_of_a_write_cut_short(photo_folder, tmp_path):
    """kill -9 during a checkpoint write leaves `.latest.pt.PID.tmp` (as big as a checkpoint) next to
    the intact latest.pt; a resume, which holds the run's lock, deletes it."""
    from prism.train.trainer import Trainer
    cfg = tiny_colorize_config(photo_folder, steps=2, ckpt_every=2, sample_every=0, val_every=0)
    run = Trainer(cfg, runs_dir=tmp_path, progress=False).fit()
    stale = run / "checkpoints" / ".latest.pt.999999.tmp"
    stale.write_bytes(b"half a checkpoint")
    Trainer(cfg, runs_dir=tmp_path, resume=run, progress=False).fit()
    assert not stale.exists()
    assert torch.load(run / "checkpoints" / "latest.pt", weights_only=True)["step"] == 2


def test_a_resume_cut_short_while_rewriting_config_yaml_can_still_resume(photo_folder, tmp_path, monkeypatch):
    """A resume rewrites RUN/config.yaml (with its overrides); a crash or kill halfway through that
    write must leave the old one whole, or the run could never be resumed again."""
    from prism import config as C
    from prism.train.trainer import Trainer
    cfg = tiny_colorize_config(photo_folder, steps=2, ckpt_every=2, sample_every=0, val_every=0)
    run = Trainer(cfg, runs_dir=tmp_path, progress=False).fit()
    before = (run / "config.yaml").read_text()

    def killed_mid_write(cfg, path):
        Path(path).write_text(before[:20])
        raise SystemExit("killed")

    monkeypatch.setattr(C, "dump", killed_mid_write)
    with pytest.raises(SystemExit):
        Trainer(cfg, runs_dir=tmp_path, resume=run, progress=False).fit()
    assert (run / "config.yaml").read_text() == before
