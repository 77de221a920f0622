"""Colorization throughput, end to end (JPEG files in, files out), for the inference paths PRISM
offers, against the plain fp32 batch-1 eager loop; and the generator's achieved GFLOP/s as a
share of this machine's measured bf16 and fp32 matrix-multiply peaks. Prints a table.

    .venv/bin/python benchmarks/throughput.py [--model colorizer] [--count 48] [--compile] [--device cuda]

On CUDA the GEMM peak is an 8192^3 bf16 product and the generator is timed at --net-batch
(default 64 there, 8 on CPU), with the device synchronised around every timing.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import prism
from prism.data.images import read_image
from prism.infer import run_on_files, save_image


def make_inputs(folder: Path, count: int) -> list[Path]:
    from skimage import data
    photos = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket()]
    paths = []
    for i in range(count):
        img = Image.fromarray(photos[i % 4]).convert("L").resize((256, 256), Image.BICUBIC)
        paths.append(folder / f"{i:03d}.jpg")
        img.save(paths[-1], quality=90)
    return paths


def plain_loop(colorizer, files, out: Path) -> float:
    t = time.perf_counter()
    for f in files:
        save_image(colorizer.colorize(read_image(f)), out / f.name)
    return len(files) / (time.perf_counter() - t)


def pipeline(colorizer, folder, out: Path, batch: int, threads: int) -> float:
    n = len(list(folder.glob("*.jpg")))
    t = time.perf_counter()
    report = run_on_files([folder], out, lambda imgs: colorizer.colorize_batch(imgs, batch_size=batch),
                          batch_size=batch, progress=False, io_threads=threads)
    assert not report.failed
    return n / (time.perf_counter() - t)


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def gemm_peak(dtype, device: str, repeats: int = 3) -> float:
    n = 8192 if device == "cuda" else 1024
    a, b = torch.randn(n, n, dtype=dtype, device=device), torch.randn(n, n, dtype=dtype, device=device)
    repeats = 20 if device == "cuda" else repeats
    a @ b
    _sync(device)
    t = time.perf_counter()
    for _ in range(repeats):
        a @ b
    _sync(device)
    return 2 * n ** 3 * repeats / (time.perf_counter() - t) / 1e9


def generator_gflops(colorizer, device: str, batch: int, size: int = 256, reps: int = 3) -> tuple[float, float]:
    """(GFLOP per 256 px image, achieved GFLOP/s of the network alone at `batch`). The model's
    own precision applies (load_model(precision=...) wraps its forward in autocast)."""
    from torch.utils.flop_counter import FlopCounterMode
    G = colorizer.G
    x = torch.randn(batch, 1, size, size, device=device)
    if getattr(colorizer, "channels_last", False):
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        G(x)
    flops = counter.get_total_flops() / batch
    with torch.no_grad():
        G(x)
        _sync(device)
        t = time.perf_counter()
        for _ in range(reps):
            G(x)
        _sync(device)
        rate = reps * batch / (time.perf_counter() - t)
    return flops / 1e9, flops * rate / 1e9


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="colorizer")
    p.add_argument("--count", type=int, default=48)
    p.add_argument("--device", default="cpu")
    p.add_argument("--net-batch", type=int, default=None, help="batch for the network-alone GFLOP/s (default 64 on CUDA, 8 on CPU)")
    p.add_argument("--compile", action="store_true", help="also measure torch.compile (slow to warm up)")
    a = p.parse_args()
    dev, cuda = a.device, a.device.startswith("cuda")
    net_batch = a.net_batch or (64 if cuda else 8)
    load = lambda precision="fp32": prism.load_model(a.model, device=dev, precision=precision)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "in").mkdir()
        files = make_inputs(tmp / "in", a.count)
        rows = []
        base = load()
        base.colorize(read_image(files[0]))  # warm-up
        baseline = plain_loop(base, files, _out(tmp, "plain"))
        rows.append(("plain loop: fp32, batch 1, eager, no threads", baseline))
        rows.append(("batch 8 + decode/encode threads", pipeline(base, tmp / "in", _out(tmp, "b8"), 8, 2)))
        fast = load().speedups(channels_last=True)
        rows.append(("batch 8 + threads + channels-last", pipeline(fast, tmp / "in", _out(tmp, "cl"), 8, 2)))
        bf16 = load("bf16").speedups(channels_last=True)
        # bf16 is emulated (very slow) on CPUs without bf16 units: 8 images suffice there
        subset = tmp / "in" if cuda else _subset(tmp, files[:8])
        rows.append((f"batch 8 + threads + channels-last + bf16{'' if cuda else ' (8 images)'}",
                     pipeline(bf16, subset, _out(tmp, "bf"), 8, 2)))
        nets = {"fp32": fast, "bf16": bf16}
        if cuda:
            nets["fp16"] = load("fp16").speedups(channels_last=True)
            rows.append(("batch 8 + threads + channels-last + fp16", pipeline(nets["fp16"], tmp / "in", _out(tmp, "fp"), 8, 2)))
        if a.compile:
            comp = load("bf16" if cuda else "fp32").speedups(channels_last=True, compile=True)
            comp.colorize_batch([read_image(f) for f in files[:8]])  # compile
            rows.append((f"batch 8 + threads + channels-last + compile{' + bf16' if cuda else ''}",
                         pipeline(comp, tmp / "in", _out(tmp, "co"), 8, 2)))
    where = torch.cuda.get_device_name() if cuda else f"{torch.get_num_threads()} threads"
    print(f"torch {torch.__version__}, {where}; {a.count} 256x256 JPEGs, end to end\n")
    w = max(len(r[0]) for r in rows)
    print(f"{'path':<{w}}  {'images/s':>9}  {'x plain':>7}")
    for name, rate in rows:
        print(f"{name:<{w}}  {rate:9.1f}  {rate / baseline:7.2f}")
    best = max(r[1] for r in rows)
    print(f"\ntarget >= 3x plain: {'met' if best >= 3 * baseline else 'MISSED'} (best {best / baseline:.2f}x)")
    peak_bf16, peak_fp32 = gemm_peak(torch.bfloat16, dev), gemm_peak(torch.float32, dev)
    achieved = {}
    for name, c in nets.items():
        gf, achieved[name] = generator_gflops(c, dev, 1 if (name == "bf16" and not cuda) else net_batch)
    peak = max(peak_bf16, peak_fp32)  # a CPU without bf16 units emulates bf16: its real peak is fp32's
    n = 8192 if cuda else 1024
    print(f"\nmatmul peak ({n}^3): bf16 {peak_bf16:.0f} GFLOP/s, fp32 {peak_fp32:.0f} GFLOP/s"
          + ("  (bf16 is emulated on this CPU)" if peak_bf16 < peak_fp32 else ""))
    print(f"generator: {gf:.2f} GFLOP per 256 px image; network alone at batch {net_batch}: "
          + ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in achieved.items())
          + f"; best = {max(achieved.values()) / peak:.1%} of the machine's matmul peak ({peak:.0f} GFLOP/s)")
    print(f"target >= 40% of the bf16 GEMM peak{'' if cuda else ' (here: of the fastest matmul peak)'}: "
          f"{'met' if max(achieved.values()) >= 0.4 * peak else 'MISSED'}")


def _subset(tmp: Path, files) -> Path:
    (tmp / "in8").mkdir()
    for f in files:
        (tmp / "in8" / f.name).write_bytes(f.read_bytes())
    return tmp / "in8"


def _out(tmp: Path, name: str) -> Path:
    (tmp / name).mkdir()
    return tmp / name


if __name__ == "__main__":
    main()
