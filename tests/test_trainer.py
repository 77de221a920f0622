"""The shared trainer: run layout, exact resume, atomic checkpoints, NaN stop, Ctrl-C."""
from __future__ import annotations

import json
import os

import pytest
import torch

from conftest import tiny_colorize_config
from prism.train import checkpoint as ckpt
from prism.train.trainer import Trainer, TrainingStopped


def _weights(run_dir, name="latest"):
    return ckpt.load_checkpoint(run_dir / "checkpoints" / f"{name}.pt")


def test_run_directory_layout(photo_folder, tmp_path):
    run = Trainer(tiny_colorize_config(photo_folder), runs_dir=tmp_path, progress=False).fit()
    assert run.name == "00000-colorize"
    for rel in ["config.yaml", "log.jsonl", "metrics.jsonl", "checkpoints/latest.pt", "checkpoints/best.pt",
                "samples/step-0000003.png", "model/model.safetensors", "model/card.json", "tensorboard"]:
        assert (run / rel).exists(), rel
    rows = [json.loads(line) for line in open(run / "log.jsonl")]
    assert [r["step"] for r in rows] == [2, 4, 6]
    assert "G_recon" in rows[0] and "D" in rows[-1] and "G_gan" in rows[-1]  # pretrain, then GAN
    metrics = [json.loads(line) for line in open(run / "metrics.jsonl")]
    assert {"psnr", "ssim", "ciede2000", "colorfulness"} <= set(metrics[0])
    card = json.loads((run / "model" / "card.json").read_text())
    assert card["task"] == "colorize" and card["training"]["steps"] == 6 and card["nets"]["G"]["arch"] == "unet"
    assert Trainer(tiny_colorize_config(photo_folder), runs_dir=tmp_path, progress=False).fit().name == "00001-colorize"


def test_resume_is_bit_identical(photo_folder, tmp_path):
    straight = Trainer(tiny_colorize_config(photo_folder), runs_dir=tmp_path / "a", progress=False).fit()
    half = Trainer(tiny_colorize_config(photo_folder, steps=3), runs_dir=tmp_path / "b", progress=False).fit()
    assert _weights(half)["step"] == 3
    cfg = tiny_colorize_config(photo_folder)
    resumed = Trainer(cfg, runs_dir=tmp_path / "b", resume=half, progress=False).fit()
    a, b = _weights(straight), _weights(resumed)
    assert a["step"] == b["step"] == 6
    for group in ("nets", "ema", "opts"):
        for net in a[group]:
            sa, sb = a[group][net], b[group][net]
            flat_a = sa["state"] if group == "opts" else sa
            flat_b = sb["state"] if group == "opts" else sb
            for key in flat_a:
                va, vb = flat_a[key], flat_b[key]
                if isinstance(va, dict):
                    for k2 in va:
                        assert torch.equal(va[k2], vb[k2]), (group, net, key, k2)
                else:
                    assert torch.equal(va, vb), (group, net, key)


def test_atomic_checkpoint_survives_kill_during_save(tmp_path, monkeypatch):
    path = tmp_path / "checkpoints" / "latest.pt"
    ckpt.atomic_torch_save({"step": 1, "w": torch.ones(3)}, path)

    def killed_mid_write(obj, f, *a, **k):
        f.write(b"\x80\x02partial-bytes")  # half a file on disk, then the process "dies"
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", killed_mid_write)
    with pytest.raises(KeyboardInterrupt):
        ckpt.atomic_torch_save({"step": 2, "w": torch.zeros(3)}, path)
    monkeypatch.undo()
    state = ckpt.load_checkpoint(path)
    assert state["step"] == 1 and torch.equal(state["w"], torch.ones(3))
    assert [p.name for p in path.parent.iterdir()] == ["latest.pt"]  # no temp file left behind


def test_checkpoint_is_loadable_without_unpickling_code(photo_folder, tmp_path):
    run = Trainer(tiny_colorize_config(photo_folder, steps=3), runs_dir=tmp_path, progress=False).fit()
    state = torch.load(run / "checkpoints" / "latest.pt", weights_only=True)
    assert state["step"] == 3 and "rng" in state
    bad = tmp_path / "evil.pt"
    torch.save({"x": os.getcwd}, bad)  # a pickle that would call code
    with pytest.raises(ValueError, match="not a readable PRISM checkpoint"):
        ckpt.load_checkpoint(bad)


def test_nan_loss_stops_and_keeps_last_good_checkpoint(photo_folder, tmp_path, monkeypatch):
    from prism.tasks.colorize import ColorizeTask
    trainer = Trainer(tiny_colorize_config(photo_folder), runs_dir=tmp_path, progress=False)
    original = ColorizeTask.g_step

    def poisoned_from_step_4(self, batch, state):
        loss, logs = original(self, batch, state)
        return (loss * float("nan"), logs) if trainer.step >= 4 else (loss, logs)

    monkeypatch.setattr(ColorizeTask, "g_step", poisoned_from_step_4)
    with pytest.raises(TrainingStopped, match="'G' loss became nan at step 4") as err:
        trainer.fit()
    assert "last good checkpoint is kept" in str(err.value)
    state = _weights(tmp_path / "00000-colorize")
    assert state["step"] == 3
    for tensor in state["nets"]["G"].values():
        assert torch.isfinite(tensor.float()).all()


def test_ctrl_c_saves_and_resumes(photo_folder, tmp_path, monkeypatch):
    trainer = Trainer(tiny_colorize_config(photo_folder), runs_dir=tmp_path, progress=False)
    from prism.tasks.colorize import ColorizeTask
    original = ColorizeTask.d_step

    def interrupt_at_step_3(self, batch, state):
        if trainer.step == 3:
            trainer._on_sigint(2, None)  # what SIGINT delivers
        return original(self, batch, state)

    monkeypatch.setattr(ColorizeTask, "d_step", interrupt_at_step_3)
    run = trainer.fit()
    assert _weights(run)["step"] == 4  # the step in flight completes, then it saves and exits
    assert not (run / "model").exists()
    monkeypatch.undo()
    resumed = Trainer(tiny_colorize_config(photo_folder), runs_dir=tmp_path, resume=run, progress=False).fit()
    assert _weights(resumed)["step"] == 6 and (resumed / "model" / "card.json").exists()


def test_init_from_starts_the_nets_from_a_saved_model_and_names_a_mismatch(tmp_path):
    """train.init_from: G starts from a saved model's weights (the D it does not keep starts fresh);
    a resumed run ignores it; a different architecture is a clear error."""
    from prism.modelio import ModelError, init_weights, save_model
    from prism.registry import build_network
    spec = {"arch": "unet", "in_channels": 1, "out_channels": 2, "depth": 3, "width": 4}
    donor = build_network(spec)
    torch.nn.init.constant_(next(donor.parameters()), 0.5)  # not what a fresh net starts with
    saved = save_model(tmp_path / "donor", {"G": donor}, {"task": "colorize", "nets": {"G": spec}, "options": {}})
    nets = {"G": build_network(spec), "D": build_network({"arch": "patchgan", "in_channels": 3, "width": 4, "n_layers": 1})}
    assert init_weights(nets, saved) == {"G": "loaded", "D": "fresh"}
    for key, value in donor.state_dict().items():
        assert torch.equal(nets["G"].state_dict()[key], value)
    with pytest.raises(ModelError, match="does not match this config's nets.G"):
        init_weights({"G": build_network({**spec, "width": 8})}, saved)
