"""The user's workflow through the real commands: train -> eval -> colorize -> export, on
scikit-image photos anywhere and on the team's real dataset when present."""
from __future__ import annotations

import json

import pytest
import yaml
from typer.testing import CliRunner

from prism.cli import app

runner = CliRunner()
TINY = ["nets.G.depth=4", "nets.G.width=8", "nets.D.width=8", "nets.D.n_layers=2", "data.size=32",
        "train.batch_size=4", "train.log_every=1", "train.sample_every=2", "train.val_every=2",
        "train.ckpt_every=2", "train.val_batches=1", "loss.pretrain_steps=1", "render_size=64"]


def _train(config, runs, *extra):
    from prism.tasks import resolve_config
    has_d = resolve_config(config)["nets"].get("D") is not None  # the shipped recipe is D-less regression
    tiny = [o for o in TINY if has_d or not o.startswith("nets.D.")]
    result = runner.invoke(app, ["train", "--config", str(config), "--runs-dir", str(runs), "--no-progress", *tiny, *extra])
    assert result.exit_code == 0, result.output
    return sorted(runs.iterdir())[-1]


def test_train_eval_colorize_export(photo_folder, tmp_path):
    config = tmp_path / "mine.yaml"
    config.write_text(yaml.safe_dump({"task": "colorize", "data": {"train": str(photo_folder), "val": str(photo_folder)}}))
    run = _train(config, tmp_path / "runs", "train.steps=4")
    assert run.name == "00000-mine"
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["train"]["steps"] == 4 and saved["nets"]["G"]["width"] == 8  # overrides recorded

    out_json = tmp_path / "eval.json"
    result = runner.invoke(app, ["eval", "colorize", "--model", str(run), "--data", str(photo_folder), "--json", str(out_json), "--limit", "6"])
    assert result.exit_code == 0, result.output
    res = json.loads(out_json.read_text())
    assert res["count"] == 6 and set(res["rows"]) == {"model", "gray baseline", "ground truth"}
    for key in ("psnr", "ssim", "ciede2000", "colorfulness", "colorfulness_ratio"):
        assert key in res["rows"]["model"] and key in res["rows"]["gray baseline"]
    assert res["rows"]["gray baseline"]["colorfulness"] < 0.5  # the gray image has (almost) no colour
    assert res["images_per_s"] > 0 and res["peak_rss_mb"] > 0
    assert "gray baseline" in result.output and "psnr" in result.output

    model_dir = tmp_path / "exported"
    assert runner.invoke(app, ["export", "--model", str(run), "-o", str(model_dir), "--half"]).exit_code == 0
    out = tmp_path / "colored"
    result = runner.invoke(app, ["colorize", str(photo_folder / "a"), "-o", str(out), "--model", str(model_dir), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert len(list(out.iterdir())) == len(list((photo_folder / "a").iterdir()))


def test_resume_via_cli_extends_a_run(photo_folder, tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"task": "colorize", "data": {"train": str(photo_folder)}}))
    run = _train(config, tmp_path / "runs", "train.steps=2")
    result = runner.invoke(app, ["train", "--resume", str(run), "--no-progress", "train.steps=4"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in open(run / "log.jsonl")]
    assert [r["step"] for r in rows] == [1, 2, 3, 4]


def test_train_reports_config_and_data_errors(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("task: colorize\ndata: {train: /nonexistent/photos}\n")
    result = runner.invoke(app, ["train", "--config", str(config), "--runs-dir", str(tmp_path / "r"), "--no-progress"])
    assert result.exit_code == 2 and "/nonexistent/photos: no such file or folder" in result.output
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").iterdir())  # no empty run left behind
    empty = tmp_path / "empty"
    empty.mkdir()
    config.write_text(f"task: colorize\ndata: {{train: {empty}}}\n")
    result = runner.invoke(app, ["train", "--config", str(config), "--runs-dir", str(tmp_path / "r"), "--no-progress"])
    assert result.exit_code == 2 and "no image files" in result.output
    result = runner.invoke(app, ["train", "--config", str(config), "train.stepz=3"])
    assert result.exit_code == 2 and "unknown config key 'train.stepz'" in result.output
    result = runner.invoke(app, ["train"])
    assert result.exit_code == 2 and "--config" in result.output


@pytest.mark.shared_data
def test_train_and_eval_on_intel_scenes(shared_data, tmp_path):
    """A few steps of the shipped CPU recipe on the real training set, scored on real val photos."""
    scenes = shared_data / "colorization" / "intel-scenes"
    run = _train("configs/colorize/cpu.yaml", tmp_path / "runs", "train.steps=3",
                 f"data.train={scenes / 'train'}", f"data.val={scenes / 'val'}")
    metrics = [json.loads(line) for line in open(run / "metrics.jsonl")]
    assert metrics and 10 < metrics[-1]["psnr"] < 60
    out_json = tmp_path / "e.json"
    result = runner.invoke(app, ["eval", "colorize", "--model", str(run), "--data", str(scenes / "val"),
                                 "--limit", "12", "--json", str(out_json)])
    assert result.exit_code == 0, result.output
    res = json.loads(out_json.read_text())
    assert res["count"] + res["left_out"]["count"] == 12 and res["rows"]["ground truth"]["colorfulness"] > 5
