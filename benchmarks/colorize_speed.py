"""Colorization speed and memory: training images/s, colorize images/s at 256 px, and the time
and peak RSS of one 4096x3072 photo vs one 256x256 photo (each case in a fresh process so its
peak RSS is its own). Prints a table; targets are reported, not asserted.

    .venv/bin/python benchmarks/colorize_speed.py [--model NAME_OR_DIR] [--repeats 5] [--no-train]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

CASE = r"""
import json, sys, time
import numpy as np, torch
import prism
model, h, w, n, repeats = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
col = prism.load_model(model)
rng = np.random.default_rng(0)
imgs = [(rng.random((h, w)) * 255).astype(np.uint8) for _ in range(n)]
col.colorize_batch(imgs[:1])  # warm-up
times = []
for _ in range(repeats):
    t = time.perf_counter(); col.colorize_batch(imgs, batch_size=n); times.append(time.perf_counter() - t)
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec from the (large) parent process
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1]
print(json.dumps({"seconds": float(np.median(times)), "images": n, "peak_rss_mb": int(hwm) / 1024}))
"""


def run_case(model: str, h: int, w: int, n: int, repeats: int) -> dict:
    out = subprocess.run([sys.executable, "-c", CASE, model, str(h), str(w), str(n), str(repeats)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def train_images_per_s(config: str, steps: int = 6) -> tuple[float, float]:
    """Images/s of the GAN phase (D + G steps) and of L1 pre-training, from the trainer's own loop."""
    import tempfile
    import numpy as np
    from PIL import Image
    from prism.tasks import resolve_config
    from prism.train.trainer import Trainer
    rates = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(32):
            arr = (np.random.default_rng(i).random((150, 150, 3)) * 255).astype(np.uint8)
            Image.fromarray(arr).save(f"{tmp}/{i}.png")
        for pre in (0, steps + 2):
            cfg = resolve_config(config, [f"data.train={tmp}", "data.val=null", f"train.steps={steps}",
                                          f"loss.pretrain_steps={pre}", "train.log_every=1000",
                                          "train.sample_every=100000", "train.ckpt_every=100000", "train.num_workers=0"])
            trainer = Trainer(cfg, runs_dir=f"{tmp}/runs", progress=False)
            t = time.perf_counter()
            trainer.fit()
            rates.append(steps * cfg["train"]["batch_size"] / (time.perf_counter() - t))
    return rates[0], rates[1]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="colorizer")
    p.add_argument("--config", default="configs/colorize/cpu.yaml")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--no-train", action="store_true", help="inference rows only")
    a = p.parse_args()
    import torch
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, model '{a.model}'\n")
    gan, pre = (float("nan"), float("nan")) if a.no_train else train_images_per_s(a.config)
    small = run_case(a.model, 256, 256, 1, a.repeats)
    batch = run_case(a.model, 256, 256, 8, a.repeats)
    large = run_case(a.model, 3072, 4096, 1, max(2, a.repeats // 2))
    ratio = large["seconds"] / small["seconds"]
    rows = [
        ("train, GAN phase (images/s, incl. run set-up)", f"{gan:.1f}", ""),
        ("train, L1 pre-training (images/s, incl. set-up)", f"{pre:.1f}", ""),
        ("colorize 256x256, batch 1 (images/s)", f"{1 / small['seconds']:.1f}", ""),
        ("colorize 256x256, batch 8 (images/s)", f"{8 / batch['seconds']:.1f}", ""),
        ("colorize 256x256: peak RSS (MB)", f"{small['peak_rss_mb']:.0f}", ""),
        ("colorize 4096x3072: seconds", f"{large['seconds']:.3f}", ""),
        ("4096x3072 time / 256x256 time", f"{ratio:.2f}", "target <= 2.0: " + ("met" if ratio <= 2 else "MISSED")),
        ("colorize 4096x3072: peak RSS (MB)", f"{large['peak_rss_mb']:.0f}",
         "target < 1024: " + ("met" if large["peak_rss_mb"] < 1024 else "MISSED")),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'value':>10}  note")
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:>10}  {note}")


if __name__ == "__main__":
    main()
