"""Colorization throughput over a folder of 200 mixed-size real photos, files in and PNG files out:
PRISM's `prism colorize` path against the reference shape, pytorch-CycleGAN-and-pix2pix's test
loop (issue 21); the outputs compared pixel by pixel; and the network's achieved FLOP/s against
this machine's fp32 matrix-multiply peak, measured in the same run. Prints a table; targets are
reported, not asserted.

    .venv/bin/python benchmarks/throughput.py [--data ../shared/data] [--rounds 1] [--threads 1]
        [--cheap-render-size 96] [--device cpu] [--compile]

The reference loop (pytorch-CycleGAN-and-pix2pix `test.py` with its colorization dataset and
model: batch 1, no loader workers, one image at a time in one thread) is: PIL decode and
.convert("RGB"), skimage rgb2lab (float64), the network, skimage lab2rgb, PIL PNG encode. It runs
the same network on the same files as PRISM, with PRISM's geometry, so that the two give the same
picture: the reference resizes every photo to a square and writes the network-size result, while
here it takes L at full resolution, shrinks it to the render size with PRISM's own
`Colorizer._render_input`, and puts the chroma, upsampled bilinearly with torch, on the
full-resolution L (and it rounds to uint8 where the reference truncates). What differs from
PRISM is only how: skimage float64 colour conversions and torch upsampling, one image at a time,
versus PRISM's OpenCV float32 colour path (prism.color), batches of 8 and 2 decode/encode threads.

A cheaper network is one more row: the same model run at a smaller render size
(`prism colorize --render-size`; v3 predicts chroma at 1/4 of it and takes lightness from the
full-resolution photo either way). Its outputs differ from the reference's by design, so its
quality is scored instead: every output of the run against the original colour photo (PSNR,
mean CIEDE2000, colourfulness, as `prism eval colorize` scores), beside the gray baseline.

Threads: --threads sets torch's and OpenCV's (default 1). On a CPU shared with a training run, 2
threads oversubscribe it and single inferences then take 10-70x longer at random.

Every figure is a ratio between measurements of one run: on a machine shared with other work the
absolute rates drift, the ratios much less. With --rounds N every path runs N times over the
folder in alternating order (ABC..CBA..), and the rates are totals over the rounds.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

import prism
from prism.data.images import list_images
from prism.infer import run_on_files, save_image

REPO = Path(__file__).resolve().parents[1]
# (folder under the data root, files taken evenly spread over its sorted listing): 200 in all
SETS = [
    ("colorization/intel-scenes/val", 50),                     # 150x150 (a few shorter), JPEG
    ("faces/utkface-128", 30),                                 # 128x128 JPEG
    ("unpaired/monet2photo/photo", 40),                        # 256x256 JPEG
    ("faces/celeba-hq-256", 30),                               # 256x256 JPEG
    ("semantic/camvid/val", 42),                               # 480x360 JPEG
    ("semantic/cityscapes-official-sample/leftImg8bit", 8),   # 1024x512 PNG
]


def pick_files(root: Path) -> list[Path]:
    files = []
    for folder, n in SETS:
        listing = list_images(root / folder)
        files += [listing[i * len(listing) // n] for i in range(n)]
    return files


def link_folder(files: list[Path], folder: Path) -> Path:
    """The photos as one folder of links named *.png: PRISM keeps an input's format on output and
    the reference writes PNG, so both write PNG (PIL reads a file by its content, not its name)."""
    folder.mkdir()
    for i, f in enumerate(files):
        (folder / f"{i:03d}-{f.stem}.png").symlink_to(f.resolve())
    return folder


# --- the reference shape ------------------------------------------------------------------------------
def reference_loop(col, files: list[Path], out: Path, stages: dict | None = None) -> None:
    """pytorch-CycleGAN-and-pix2pix's test loop, batch 1, one thread, with PRISM's geometry."""
    from skimage import color as skc
    clock = time.perf_counter
    for f in files:
        t0 = clock()
        rgb = np.asarray(Image.open(f).convert("RGB"))                       # PIL decode
        t1 = clock()
        lab = skc.rgb2lab(rgb)                                                  # transforms
        L = torch.from_numpy(lab[:, :, 0].astype(np.float32)) / 50.0 - 1.0
        x, (h, w) = col._render_input(L)
        t2 = clock()
        with torch.no_grad():                                                   # forward
            ab = col.G(x[None].to(col.device)).float().cpu()[:, :, :h, :w] * col.chroma_gain
        t3 = clock()
        ab = F.interpolate(ab, size=L.shape, mode="bilinear", align_corners=False)[0]
        lab_out = np.stack([lab[:, :, 0], ab[0].double().numpy() * 110.0, ab[1].double().numpy() * 110.0], 2)
        img = Image.fromarray((skc.lab2rgb(lab_out) * 255.0 + 0.5).astype(np.uint8))  # (tensor2im)
        t4 = clock()
        img.save(out / f.name)                                                 # PNG encode
        t5 = clock()
        if stages is not None:
            for k, dt in zip(("decode", "rgb2lab + resize", "network", "upsample + lab2rgb", "PNG encode"),
                             (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4)):
                stages[k] = stages.get(k, 0.0) + dt


# --- PRISM ------------------------------------------------------------------------------------------------
def prism_plain(col, files: list[Path], out: Path) -> None:
    """PRISM's API one file at a time: colorize(path) + save, batch 1, no I/O threads."""
    for f in files:
        save_image(col.colorize(f), out / f.name)


def prism_folder(col, folder: Path, out: Path, batch: int = 8) -> None:
    """What `prism colorize FOLDER` runs (prism.cli.colorize): run_on_files, batches of 8,
    decoding and encoding in 2 threads while the network works."""
    report = run_on_files([folder], out, lambda imgs: col.colorize_batch(imgs, 1.0, batch), batch_size=batch,
                          progress=False)
    assert not report.failed, report.failed


# --- network and machine ----------------------------------------------------------------------------------
def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def matmul_peak(device: str, n: int, repeats: int = 5) -> float:
    """fp32 GFLOP/s of an n x n x n torch.mm (best of `repeats`)."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        _sync(device)
        t = time.perf_counter()
        torch.mm(a, b)
        _sync(device)
        best = min(best, time.perf_counter() - t)
    return 2 * n ** 3 / best / 1e9


def network_inputs(col, files: list[Path]) -> list[torch.Tensor]:
    from prism import color
    from prism.data.images import read_image
    return [col._render_input(color.lightness_full(read_image(f).pixels))[0] for f in files]


def network_flops(col, xs: list[torch.Tensor]) -> float:
    """FLOPs of the network over all inputs (torch's FlopCounterMode: matmuls and convolutions)."""
    from torch.utils.flop_counter import FlopCounterMode
    per_shape = {}
    for x in xs:
        if tuple(x.shape) not in per_shape:
            with torch.no_grad(), FlopCounterMode(display=False) as counter:
                col.G(x[None].to(col.device))
            per_shape[tuple(x.shape)] = counter.get_total_flops()
    return sum(per_shape[tuple(x.shape)] for x in xs)


def network_seconds(col, xs: list[torch.Tensor], batch: int) -> float:
    """The network alone over all inputs: batch 1 in order, or batches of `batch` by shape, as
    Colorizer.colorize_batch groups them."""
    groups: dict[tuple, list[torch.Tensor]] = {}
    for x in xs:
        groups.setdefault(tuple(x.shape), []).append(x)
    chunks = [torch.stack(g[k:k + batch]) for g in groups.values() for k in range(0, len(g), batch)] if batch > 1 \
        else [x[None] for x in xs]
    chunks = [c.to(col.device) for c in chunks]
    if getattr(col, "channels_last", False):
        chunks = [c.contiguous(memory_format=torch.channels_last) for c in chunks]
    with torch.no_grad():
        col.G(chunks[0])
        _sync(str(col.device))
        t = time.perf_counter()
        for c in chunks:
            col.G(c)
        _sync(str(col.device))
    return time.perf_counter() - t


def quality(out: Path, names: list[str], truths: list[Path], gray: bool = False) -> dict[str, float]:
    """prism's colorization scores of an output folder against the original colour photos (or,
    with gray=True, of the photos' own lightness without colour)."""
    from prism import color, metrics
    score = metrics.ColorizationScore()
    for name, truth_path in zip(names, truths):
        truth = torch.from_numpy(np.asarray(Image.open(truth_path).convert("RGB")).copy()).permute(2, 0, 1).float() / 255
        if gray:
            pred = color.gray_rgb(truth[None])[0]
        else:
            pred = torch.from_numpy(np.asarray(Image.open(out / name).convert("RGB")).copy()).permute(2, 0, 1).float() / 255
        score.add(pred, truth)
    return score.summary()


def max_abs_difference(a: Path, b: Path, names: list[str]) -> tuple[int, float, float, float, int]:
    """(max abs difference in levels, mean abs difference, share of values that differ, share
    more than 1 level apart, images whose max is over 1 level) over the decoded PNGs of two
    output folders."""
    worst, total, differ, count, over1, images_over1 = 0, 0.0, 0, 0, 0, 0
    for name in names:
        x = np.asarray(Image.open(a / name).convert("RGB"), dtype=np.int16)
        y = np.asarray(Image.open(b / name).convert("RGB"), dtype=np.int16)
        assert x.shape == y.shape, (name, x.shape, y.shape)
        d = np.abs(x - y)
        worst, total, differ, count = max(worst, int(d.max())), total + float(d.sum()), differ + int((d > 0).sum()), count + d.size
        over1, images_over1 = over1 + int((d > 1).sum()), images_over1 + int(d.max() > 1)
    return worst, total / count, differ / count, over1 / count, images_over1


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="colorizer")
    p.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    p.add_argument("--rounds", type=int, default=1, help="times every path runs over the folder, in alternating order")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1, help="torch and OpenCV threads (default 1: the CPU is shared)")
    p.add_argument("--cheap-render-size", type=int, default=96, help="render size of the cheaper-network row (0: none)")
    p.add_argument("--matmul-n", type=int, default=None, help="size of the peak matmul (default 2048 on CPU, 8192 on CUDA)")
    p.add_argument("--compile", action="store_true", help="also measure torch.compile (slow to warm up)")
    a = p.parse_args()
    dev = a.device
    import warnings

    import cv2
    torch.set_num_threads(a.threads)
    cv2.setNumThreads(a.threads)
    warnings.filterwarnings("ignore", message="Conversion from CIE-LAB")  # skimage lab2rgb clipping note
    load = lambda: prism.load_model(a.model, device=dev)
    files = pick_files(a.data)
    from collections import Counter
    sizes = sorted(Counter(Image.open(f).size for f in files).items(), key=lambda kv: kv[0][0] * kv[0][1])
    base = load()
    fast = load().speedups(channels_last=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        folder = link_folder(files, tmp / "in")
        linked = sorted(folder.iterdir())
        names = [f.name for f in linked]
        # each path: (input folder, output folder) -> None
        paths = {
            "reference loop (pytorch-CycleGAN-and-pix2pix test shape)":
                lambda src, out: reference_loop(base, sorted(src.iterdir()), out),
            "PRISM colorize(), one file at a time, no threads": lambda src, out: prism_plain(base, sorted(src.iterdir()), out),
            "prism colorize FOLDER (batch 8, 2 I/O threads)": lambda src, out: prism_folder(base, src, out),
            "prism colorize FOLDER + channels-last": lambda src, out: prism_folder(fast, src, out),
        }
        if a.cheap_render_size:
            cheap = load().speedups(channels_last=True)
            cheap.render_size = a.cheap_render_size
            paths[f"prism colorize FOLDER + channels-last --render-size {a.cheap_render_size} (cheaper network)"] = \
                lambda src, out: prism_folder(cheap, src, out)
        if a.compile:
            comp = load().speedups(channels_last=True, compile=True)
            paths["prism colorize FOLDER + channels-last + compile"] = lambda src, out: prism_folder(comp, src, out)
        # warm-up: every path on a few files of every size (imports, thread pools, allocator, compile)
        warm = link_folder([files[i] for i in (0, 60, 100, 160, 199)], tmp / "warm")
        for k, run in enumerate(paths.values()):
            (tmp / f"warm-out{k}").mkdir()
            run(warm, tmp / f"warm-out{k}")
        seconds = {name: 0.0 for name in paths}
        outs = {}
        for r in range(a.rounds):
            order = list(paths.items()) if r % 2 == 0 else list(paths.items())[::-1]
            for k, (name, run) in enumerate(order):
                out = tmp / f"out-{r}-{k}"
                out.mkdir()
                t = time.perf_counter()
                run(folder, out)
                seconds[name] += time.perf_counter() - t
                outs[name] = out
        ref_name, plain_name, folder_name = list(paths)[:3]
        diff_folder = max_abs_difference(outs[ref_name], outs[folder_name], names)
        diff_plain = max_abs_difference(outs[ref_name], outs[plain_name], names)
        scored = {"gray (lightness only, no colour)": quality(folder, names, files, gray=True),
                  f"reference loop / prism colorize (render size {base.render_size})": quality(outs[ref_name], names, files)}
        if a.cheap_render_size:
            scored[f"prism colorize --render-size {a.cheap_render_size}"] = quality(outs[list(paths)[4]], names, files)
        # where the reference's time goes (one more pass, instrumented)
        stages: dict = {}
        out = tmp / "stages"
        out.mkdir()
        t = time.perf_counter()
        reference_loop(base, linked, out, stages)
        stage_total = time.perf_counter() - t

    xs = network_inputs(base, files)
    flops = network_flops(base, xs)
    net_b1 = network_seconds(base, xs, 1)
    net_b8 = network_seconds(fast, xs, 8)
    n = a.matmul_n or (8192 if dev.startswith("cuda") else 2048)
    peak = matmul_peak(dev, n)

    count = len(files) * a.rounds
    where = (torch.cuda.get_device_name() + ", " if dev.startswith("cuda") else "") + \
        f"{torch.get_num_threads()} torch / {cv2.getNumThreads()} OpenCV thread(s) of {os.cpu_count()} CPUs"
    print(f"torch {torch.__version__}, {where}; model '{a.model}' (render size {base.render_size}); "
          f"{len(files)} real photos from {a.data} (sizes: {', '.join(f'{w}x{h} x{c}' for (w, h), c in sizes)}), "
          f"files in, PNG files out; {a.rounds} round(s)\n")
    rows = [(name, count / s) for name, s in seconds.items()]
    baseline = rows[0][1]
    w = max(len(r[0]) for r in rows)
    print(f"{'path':<{w}}  {'images/s':>8}  {'x reference':>11}")
    for name, rate in rows:
        print(f"{name:<{w}}  {rate:8.2f}  {rate / baseline:11.2f}")
    same = [r for r in rows[1:] if "render-size" not in r[0]]
    best_name, best = max(same, key=lambda r: r[1])
    print(f"\noutputs, reference vs prism colorize FOLDER (same network): max abs difference {diff_folder[0]} levels, "
          f"mean {diff_folder[1]:.3f}; {diff_folder[2]:.2%} of values differ, {diff_folder[3]:.4%} by more than "
          f"1 level, in {diff_folder[4]} of {len(names)} images (vs colorize() one at a time: max {diff_plain[0]}, "
          f"mean {diff_plain[1]:.3f})")
    print("  (the reference converts with skimage in float64: its L differs from OpenCV's float32 L by up to 0.2,\n"
          "   which the network carries into its chroma, and it clips out-of-gamut colours in XYZ, OpenCV in RGB)")
    equal = diff_folder[0] <= 1
    print(f"target >= 3x the reference loop, same network, outputs equal (<= 1 level): "
          f"{'met' if best >= 3 * baseline and equal else 'MISSED'} (best {best / baseline:.2f}x: {best_name})")
    if a.cheap_render_size:
        cheap_rate = rows[4][1]
        print(f"target >= 3x with the cheaper network (render size {a.cheap_render_size}, quality above): "
              f"{'met' if cheap_rate >= 3 * baseline else 'MISSED'} ({cheap_rate / baseline:.2f}x)")

    print("\nquality of the outputs against the original colour photos (all 200 scored):")
    print(f"  {'outputs':<45} {'PSNR dB':>8} {'CIEDE2000':>9} {'colourfulness':>13}")
    for k, v in scored.items():
        print(f"  {k:<45} {v['psnr']:8.2f} {v['ciede2000']:9.2f} {v['colorfulness']:13.1f}")

    print(f"\nreference loop, where the time goes (one more instrumented pass, {stage_total:.1f} s):")
    for k, v in stages.items():
        print(f"  {k:<20} {v / stage_total:6.1%}")
    fixed = stages["decode"] + stages["network"] + stages["PNG encode"]
    print(f"  decode + network + PNG encode (work every path does the same way) = {fixed / stage_total:.1%}: "
          f"a serial path that only sped up the rest could reach {stage_total / fixed:.2f}x")

    gflop = flops / 1e9
    print(f"\nnetwork: {gflop / len(files):.3f} GFLOP per image on average at render size {base.render_size} "
          f"({gflop:.1f} GFLOP over the {len(files)} photos; FlopCounterMode)")
    print(f"network alone over the {len(files)} inputs: batch 1 {gflop / net_b1:.1f} GFLOP/s "
          f"({len(files) / net_b1:.1f} images/s), batches of 8 by shape + channels-last {gflop / net_b8:.1f} GFLOP/s "
          f"({len(files) / net_b8:.1f} images/s)")
    print(f"fp32 matmul peak ({n}^3 torch.mm, best of 5): {peak:.1f} GFLOP/s; network alone = "
          f"{gflop / net_b1 / peak:.1%} (batch 1) / {gflop / net_b8 / peak:.1%} (batch 8) of it; "
          f"end to end, {best_name}: {gflop * best / len(files) / peak:.1%}")


if __name__ == "__main__":
    main()
