"""Evaluation loops behind `prism eval TASK`; the metric math lives in prism.metrics."""
from __future__ import annotations

import resource
import time

import numpy as np
import torch
from rich.progress import Progress

from prism import color, metrics
from prism.data.images import ImageReadError, list_images, read_image


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB


def evaluate_colorizer(colorizer, data, limit: int = 0, batch_size: int = 16, progress: bool = True) -> dict:
    """Colorize the lightness of every ground-truth photo in `data` and score the result, beside
    the plain gray image (same lightness, no colour) as a baseline. Images are scored at their own
    resolution, one at a time (sizes may differ)."""
    files = list_images(data)[: limit or None]
    model_acc, gray_acc = metrics.Averager(), metrics.Averager()
    truth_colorfulness = metrics.Averager()
    skipped, seconds, n = [], 0.0, 0
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("evaluating", total=len(files))
        for start in range(0, len(files), batch_size):
            truths = []
            for f in files[start:start + batch_size]:
                try:
                    truths.append(torch.from_numpy(read_image(f).rgb).permute(2, 0, 1))
                except ImageReadError as e:
                    skipped.append(f"{e.path}: {e.reason}")
            grays = [color.gray_rgb(t[None])[0] for t in truths]
            t0 = time.perf_counter()
            outs = colorizer.colorize_batch([np.ascontiguousarray(g.permute(1, 2, 0).numpy()) for g in grays],
                                            batch_size=batch_size)
            seconds += time.perf_counter() - t0
            for truth, gray, out in zip(truths, grays, outs):
                pred = torch.from_numpy(np.asarray(out.convert("RGB"), dtype=np.float32) / 255.0).permute(2, 0, 1)
                model_acc.add(metrics.colorization_metrics(pred[None], truth[None]), 1)
                gray_acc.add(metrics.colorization_metrics(gray[None], truth[None]), 1)
                truth_colorfulness.add({"colorfulness": metrics.colorfulness(truth[None])}, 1)
                n += 1
            bar.update(task, advance=len(files[start:start + batch_size]))
    truth_cf = truth_colorfulness.means().get("colorfulness", float("nan"))
    rows = {"model": model_acc.means(), "gray baseline": gray_acc.means(),
            "ground truth": {"psnr": float("inf"), "ssim": 1.0, "ciede2000": 0.0, "colorfulness": truth_cf}}
    for row in rows.values():
        row["colorfulness_ratio"] = row["colorfulness"] / truth_cf if truth_cf else float("nan")
    return {
        "task": "colorize", "data": str(data), "count": n, "rows": rows,
        "images_per_s": round(n / seconds, 2) if seconds else None,
        "peak_rss_mb": round(peak_rss_mb(), 1), "render_size": colorizer.render_size,
        "model": colorizer.card.get("name") or colorizer.card.get("training", {}).get("run", "?"),
        "skipped": skipped,
    }
