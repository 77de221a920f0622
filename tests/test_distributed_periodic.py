"""Two gloo processes for every task that trains, with sampling, validation, checkpoints and
keep_every all due mid-run and at the last step: every rank must take part in the same
collectives in the same order. A mismatch shows as a hang, so the collective timeout is short and
each run has a wall-clock limit: a fault fails the test in seconds, it never stalls CI."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from test_cyclegan import tiny_cyclegan_config
from test_oasis import scenes, scenes_config  # noqa: F401  (fixture: synthetic labelled scenes)
from test_pix2pix import tiny_pix2pix_config
from test_restore import tiny_model_dir
from test_segment import scenes_data, tiny_segment_config
from test_stylegan import tiny_stylegan_config
from test_stylegan_encoder import _encoder_config

from conftest import tiny_colorize_config

HELPER = Path(__file__).parent / "helpers" / "periodic_run.py"
PERIODIC = {"steps": 4, "devices": 2, "batch_size": 2, "log_every": 1, "sample_every": 2, "val_every": 2,
            "ckpt_every": 2, "keep_every": 2, "val_batches": 1, "collective_timeout_s": 60}
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}


def _paired(photo_folder, root) -> Path:
    """pix2pix pairs (A | B side by side) cut from the sample photos."""
    root.mkdir()
    for i, f in enumerate(sorted(photo_folder.rglob("*.png"))[:6]):
        img = np.asarray(Image.open(f).convert("RGB").resize((32, 32)))
        Image.fromarray(np.concatenate([img, img[..., ::-1]], 1)).save(root / f"{i}.png")
    return root


def _config(task, photo_folder, scenes, tmp_path) -> dict:
    if task == "colorize":
        return tiny_colorize_config(photo_folder)
    if task == "cyclegan":
        return tiny_cyclegan_config(photo_folder / "a", photo_folder / "b")
    if task == "pix2pix":
        return tiny_pix2pix_config(_paired(photo_folder, tmp_path / "pairs"))
    if task == "oasis":
        return scenes_config(scenes)
    if task == "segment":
        return tiny_segment_config(scenes_data(scenes))
    if task == "stylegan":
        return tiny_stylegan_config(photo_folder)
    return _encoder_config(tiny_model_dir(tmp_path), photo_folder)


def _assert_every_periodic_output(runs: Path, result) -> Path:
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (run,) = sorted(runs.glob("0*"))
    names = {p.name for p in (run / "checkpoints").iterdir()}
    assert {"latest.pt", "step-0000002.pt", "step-0000004.pt"} <= names, names
    if (run / "metrics.jsonl").is_file():
        steps = [json.loads(x)["step"] for x in (run / "metrics.jsonl").read_text().splitlines()]
        assert steps == [2, 4], steps
    assert (run / "model" / "card.json").is_file()
    return run


@pytest.mark.parametrize("task", ["colorize", "cyclegan", "pix2pix", "oasis", "segment", "stylegan",
                                  "stylegan_encoder"])
def test_two_processes_with_all_periodic_work_due_finish(task, photo_folder, scenes, tmp_path):
    cfg = _config(task, photo_folder, scenes, tmp_path)
    cfg["train"].update(PERIODIC)
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    result = subprocess.run([sys.executable, str(HELPER), str(tmp_path / "cfg.json"), str(tmp_path / "runs")],
                            capture_output=True, text=True, env=ENV, timeout=600)
    _assert_every_periodic_output(tmp_path / "runs", result)


def test_stylegan_r1_is_all_reduced_on_two_processes(photo_folder, tmp_path):
    """R1 (a gradient penalty through torch.autograd.grad) runs outside DDP's sync, so its gradient
    must still reach the all-reduce: after R1 steps both ranks, which saw different images, hold
    identical weights, and R1 changed D."""
    weights = {}
    for gamma in (10.0, 0.0):
        cfg = tiny_stylegan_config(photo_folder, steps=4, devices=2, batch_size=2, sample_every=0, val_every=0,
                                   ckpt_every=1000, collective_timeout_s=60)
        cfg["loss"].update(r1_gamma=gamma, r1_every=2, diffaugment="")  # R1 at steps 0 and 2
        (tmp_path / "cfg.json").write_text(json.dumps(cfg))
        runs = tmp_path / f"gamma{gamma}"
        result = subprocess.run([sys.executable, str(HELPER), str(tmp_path / "cfg.json"), str(runs), "--save-ranks"],
                                capture_output=True, text=True, env=ENV, timeout=600)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        rank0, rank1 = (torch.load(runs / f"weights-rank{r}.pt", weights_only=True) for r in (0, 1))
        assert all(torch.equal(rank0[n][k], rank1[n][k]) for n in rank0 for k in rank0[n]), gamma
        weights[gamma] = rank0
    assert any(not torch.equal(weights[10.0]["D"][k], weights[0.0]["D"][k]) for k in weights[0.0]["D"])


@pytest.mark.skipif(shutil.which("torchrun", path=str(Path(sys.executable).parent)) is None, reason="torchrun not installed")
def test_torchrun_launches_the_cli(photo_folder, tmp_path):
    cfg = tiny_colorize_config(photo_folder)
    cfg["train"].update(PERIODIC)
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    torchrun = str(Path(sys.executable).parent / "torchrun")
    result = subprocess.run([torchrun, "--standalone", "--nproc_per_node", "2", "-m", "prism.cli", "train",
                             "--config", str(tmp_path / "cfg.yaml"), "--runs-dir", str(tmp_path / "runs"),
                             "--no-progress"], capture_output=True, text=True, env=ENV, timeout=600)
    _assert_every_periodic_output(tmp_path / "runs", result)


def test_more_cpu_processes_than_cores_is_a_clear_error(photo_folder, tmp_path):
    from prism import config as C
    from prism.train.trainer import Trainer
    cfg = tiny_colorize_config(photo_folder)
    cfg["train"]["devices"] = (os.cpu_count() or 1) + 1
    with pytest.raises(C.ConfigError, match="cores: use --devices"):
        Trainer(cfg, runs_dir=tmp_path)


def test_a_master_port_in_use_is_a_clear_error(photo_folder, tmp_path, monkeypatch):
    import socket

    from prism import config as C
    from prism.train.trainer import Trainer
    cfg = tiny_colorize_config(photo_folder)
    cfg["train"]["devices"] = 2
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        monkeypatch.setenv("MASTER_PORT", str(taken.getsockname()[1]))
        monkeypatch.delenv("LOCAL_RANK", raising=False)
        with pytest.raises(C.ConfigError, match="is in use"):
            Trainer(cfg, runs_dir=tmp_path)


def test_resuming_a_run_another_live_run_holds_is_a_clear_error(photo_folder, tmp_path):
    from typer.testing import CliRunner

    from prism.cli import app
    from prism.train.rundir import lock_run_dir
    from prism.train.trainer import Trainer
    cfg = tiny_colorize_config(photo_folder, steps=2)
    run = Trainer(cfg, runs_dir=tmp_path, progress=False).fit()
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from prism.train.rundir import lock_run_dir; "
                               f"h = lock_run_dir({str(run)!r}); print('locked', flush=True); time.sleep(60)"],
                              stdout=subprocess.PIPE, text=True, env=ENV)
    try:
        assert holder.stdout.readline().strip() == "locked"
        result = CliRunner().invoke(app, ["train", "--resume", str(run), "--no-progress", "train.steps=3"])
        assert result.exit_code == 2 and "is being trained by another live run" in result.output
        assert f"pid {holder.pid}" in result.output
    finally:
        holder.kill()
        holder.wait()
    lock_run_dir(run).close()  # the holder is gone: the lock is free again
