"""Where a run's numbers and pictures go: JSONL (machine-readable, one row per event),
TensorBoard (curves and sample grids) and PNG files in the run directory."""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

import torch
from PIL import Image


class RunLogger:
    def __init__(self, run_dir: Path, enabled: bool = True, tensorboard: bool = True):
        self.run_dir, self.enabled = Path(run_dir), enabled
        self.tb = None
        if enabled and tensorboard:
            from torch.utils.tensorboard import SummaryWriter
            self.tb = SummaryWriter(str(self.run_dir / "tensorboard"))

    def _append(self, name: str, row: dict) -> None:
        with open(self.run_dir / name, "a") as f:
            f.write(json.dumps(row) + "\n")

    def losses(self, step: int, values: dict) -> None:
        if not self.enabled:
            return
        self._append("log.jsonl", {"step": step, "time": round(time.time(), 3), **values})
        if self.tb:
            for k, v in values.items():
                self.tb.add_scalar(f"train/{k}", v, step)

    def metrics(self, step: int, values: dict) -> None:
        if not self.enabled:
            return
        self._append("metrics.jsonl", {"step": step, "time": round(time.time(), 3), **values})
        if self.tb:
            for k, v in values.items():
                if isinstance(v, (int, float)) and math.isfinite(v):
                    self.tb.add_scalar(f"val/{k}", v, step)

    def image(self, step: int, grid: torch.Tensor, tag: str = "samples") -> Path | None:
        """grid: (3,H,W) float in [0,1]; saved as samples/step-0001000.png and to TensorBoard."""
        if not self.enabled:
            return None
        path = self.run_dir / tag / f"step-{step:07d}.png"
        path.parent.mkdir(exist_ok=True)
        save_tensor_png(grid, path)
        if self.tb:
            self.tb.add_image(tag, grid.clamp(0, 1), step)
        return path

    def close(self) -> None:
        if self.tb:
            self.tb.close()


def save_tensor_png(img: torch.Tensor, path: Path) -> None:
    arr = (img.detach().float().clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    Image.fromarray(arr).save(path)


def image_grid(columns: list[torch.Tensor], pad: int = 2) -> torch.Tensor:
    """columns: equally shaped (B,3,H,W) tensors -> one (3, B*H, C*W) grid, one row per sample."""
    b, _, h, w = columns[0].shape
    out = torch.ones(3, b * (h + pad) - pad, len(columns) * (w + pad) - pad)
    for c, col in enumerate(columns):
        for r in range(b):
            out[:, r * (h + pad):r * (h + pad) + h, c * (w + pad):c * (w + pad) + w] = col[r].float().cpu()
    return out


def plot_losses(log_path: Path, out_path: Path) -> Path | None:
    """Loss curves from log.jsonl as a PNG (matplotlib if installed, else skipped)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    rows = [json.loads(line) for line in open(log_path)] if log_path.is_file() else []
    keys = sorted({k for r in rows for k in r if k not in ("step", "time", "lr")})
    if not rows or not keys:
        return None
    fig, axes = plt.subplots(len(keys), 1, figsize=(7, 1.8 * len(keys)), sharex=True, squeeze=False)
    for ax, key in zip(axes[:, 0], keys):
        pts = [(r["step"], r[key]) for r in rows if key in r]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], lw=1)
        ax.set_ylabel(key, fontsize=8)
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("step")
    fig.tight_layout()
    fig.savefig(out_path, dpi=100)
    plt.close(fig)
    return out_path
