"""Learning curves of a colorizer run: the training loss from log.jsonl, and the eval protocol
(prism.evaluation.evaluate_colorizer: colourless truths left out, PSNR mean and pooled, CIEDE2000,
colourfulness) on val photos for every kept checkpoint (checkpoints/step-*.pt, then latest.pt),
beside the gray image. One PNG and one JSON.

    .venv/bin/python scripts/colorizer_curves.py runs/00000-effnet-unet \
        --val ../shared/data/colorization/intel-scenes/val --every 3 --render-size 160 \
        --png docs/colorizer-v3-learning-curves.png --json docs/colorizer-v3-learning-curves.json
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import prism
from prism.data.images import list_images
from prism.evaluation import evaluate_colorizer
from prism.train.checkpoint import CHECKPOINT_DIR, load_checkpoint


def training_loss(run: Path, key: str = "G_recon") -> list[tuple[int, float]]:
    """(step, loss) from log.jsonl; a resumed run may have logged steps twice: the last one counts."""
    rows = {}
    for line in (run / "log.jsonl").read_text().splitlines():
        row = json.loads(line)
        if key in row:
            rows[row["step"]] = row[key]
    return sorted(rows.items())


def main():
    p = argparse.ArgumentParser()
    p.add_argument("run", type=Path)
    p.add_argument("--val", required=True)
    p.add_argument("--every", type=int, default=1, help="score every k-th val photo (sorted)")
    p.add_argument("--render-size", type=int, default=None, help="default: the run's")
    p.add_argument("--png", type=Path, required=True)
    p.add_argument("--json", type=Path, required=True)
    a = p.parse_args()
    files = list_images(a.val)[::a.every]
    ckpts = sorted((a.run / CHECKPOINT_DIR).glob("step-*.pt")) + [a.run / CHECKPOINT_DIR / "latest.pt"]
    points = []
    for path in ckpts:
        step = load_checkpoint(path)["step"]
        if any(pt["step"] == step for pt in points):
            continue
        model = prism.load_model(path)
        model.render_size = a.render_size or model.render_size
        result = evaluate_colorizer(model, a.val, files=files, progress=False)
        points.append({"step": step, "checkpoint": path.name, "count": result["count"],
                       "left_out": result["left_out"]["count"], **{k: result["rows"][k] for k in ("model", "gray baseline")},
                       "truth_colorfulness": result["rows"]["ground truth"]["colorfulness"]})
        print(step, json.dumps({k: round(v, 3) for k, v in result["rows"]["model"].items()}))
    points.sort(key=lambda pt: pt["step"])
    a.json.write_text(json.dumps({"run": str(a.run), "val": a.val, "every": a.every, "points": points}, indent=1))

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    loss = training_loss(a.run)
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.4))
    window = 20
    smooth = [sum(v for _, v in loss[max(0, i - window):i + 1]) / len(loss[max(0, i - window):i + 1]) for i in range(len(loss))]
    axes[0].plot([s for s, _ in loss], [v for _, v in loss], lw=0.5, alpha=0.4)
    axes[0].plot([s for s, _ in loss], smooth, lw=1.5)
    axes[0].set_title("training L1 (ab, [-1, 1] units)")
    steps = [pt["step"] for pt in points]
    for ax, key, title in ((axes[1], "psnr", "val PSNR (dB): mean / pooled"), (axes[2], "ciede2000", "val mean CIEDE2000"),
                           (axes[3], "colorfulness", "val colourfulness")):
        ax.plot(steps, [pt["model"][key] for pt in points], "o-", label="model")
        ax.axhline(points[-1]["gray baseline"][key], color="gray", ls="--", label="gray image")
        if key == "psnr":
            ax.plot(steps, [pt["model"]["psnr_pooled"] for pt in points], "s-", label="model, pooled")
            ax.axhline(points[-1]["gray baseline"]["psnr_pooled"], color="gray", ls=":", label="gray, pooled")
        if key == "colorfulness":
            ax.axhline(points[-1]["truth_colorfulness"], color="green", ls="--", label="truth")
        ax.set_title(title)
        ax.legend(fontsize=7)
    for ax in axes:
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    fig.suptitle(f"{a.run.name}: {points[-1]['count']} val photos scored ({points[-1]['left_out']} colourless left out)")
    fig.tight_layout()
    fig.savefig(a.png, dpi=90)
    print(f"written {a.png} and {a.json}")


if __name__ == "__main__":
    main()
