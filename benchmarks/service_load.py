"""`POST /v1/colorize` under load, before and after issue 21's colour path: throughput and client
latency (p50, p95) at 8 concurrent clients for a 256x256 upload and a 4096x3072 (12.6 Mpx)
upload, bundled colorizer, PNG answers. Prints a table.

    .venv/bin/python benchmarks/service_load.py [--before-rev ab84053] [--requests-small 64]
        [--requests-large 16] [--rounds 1] [--torch-threads 1]

"before" is a copy of this checkout's src/ in a temporary folder with the files of the previous
colour path (src/prism/color.py and src/prism/tasks/colorize.py, read with `git show REV:PATH`;
REV defaults to ab84053, the commit before the OpenCV colour path) put back; nothing else differs,
and the repository's git state is not touched. Both servers (`prism serve --no-ui --workers 1
--max-queue 8 --torch-threads 1`, as in tests/test_serve_load.py) run side by side on loopback,
each from its own tree by PYTHONPATH, and are measured in turn in the order before, after, after,
before (then reversed each further round), so that drift on a shared machine hits both alike.
Every figure is a ratio between measurements of this one run; the absolute figures depend on
whatever else the machine runs.
"""
from __future__ import annotations

import argparse
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

from prism.serve.testing import concurrent_posts, process_peak_rss_mb

REPO = Path(__file__).resolve().parents[1]
COLOUR_PATH_FILES = ("src/prism/color.py", "src/prism/tasks/colorize.py")
CONCURRENCY = 8


def before_tree(rev: str, dest: Path) -> Path:
    """This checkout's src/ with the previous colour path's files from `rev`; returns its src."""
    src = dest / "src"
    shutil.copytree(REPO / "src", src, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for rel in COLOUR_PATH_FILES:
        text = subprocess.run(["git", "-C", str(REPO), "show", f"{rev}:{rel}"], capture_output=True, text=True,
                              check=True).stdout
        (dest / rel).write_text(text)
    return src


class Server:
    def __init__(self, name: str, src: Path, log: Path, torch_threads: int):
        from prism.serve.testing import free_port
        self.name, self.port = name, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "PYTHONPATH": str(src)}
        where = subprocess.run([sys.executable, "-c", "import prism; print(prism.__file__)"], env=env,
                               capture_output=True, text=True, check=True).stdout.strip()
        assert where.startswith(str(src)), f"{name}: prism imported from {where}, not {src}"
        self.log = open(log, "w+")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "prism.cli", "serve", "--no-ui", "--host", "127.0.0.1", "--port", str(self.port),
             "--workers", "1", "--max-queue", str(CONCURRENCY), "--torch-threads", str(torch_threads)],
            env=env, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def wait(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(self.url + "/healthz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.log.seek(0)
                raise RuntimeError(f"{self.name} server did not start:\n{self.log.read()[-3000:]}")
            time.sleep(0.3)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def load(url: str, upload: bytes, n: int) -> dict:
    """n POSTs from CONCURRENCY clients; wall time, client latencies, statuses, one answer."""
    wall, results = concurrent_posts(url + "/v1/colorize", lambda i: {"files": {"image": ("photo.jpg", upload, "image/jpeg")}},
                                     n, CONCURRENCY, timeout=600)
    return {"wall": wall, "latency": [t for _, t, _ in results], "errors": sum(s != 200 for s, _, _ in results),
            "answer": results[0][2]}


def uploads(data: Path) -> dict[str, bytes]:
    small = sorted((data / "unpaired/monet2photo/photo").glob("*.jpg"))[0].read_bytes()  # real 256x256 JPEG, as is
    big = Image.open(sorted((data / "semantic/camvid/val").glob("*.jpg"))[0]).convert("RGB")
    buf = io.BytesIO()
    big.resize((4096, 3072), Image.BICUBIC).save(buf, "JPEG", quality=90)  # a real 4:3 photo, upscaled
    return {"256x256": small, "4096x3072": buf.getvalue()}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--before-rev", default="ab84053", help="git revision of the previous colour path")
    p.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    p.add_argument("--requests-small", type=int, default=64)
    p.add_argument("--requests-large", type=int, default=16)
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--torch-threads", type=int, default=1)
    a = p.parse_args()
    ups = uploads(a.data)
    counts = {"256x256": a.requests_small, "4096x3072": a.requests_large}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        servers = {"before": Server("before", before_tree(a.before_rev, tmp / "before"), tmp / "before.log", a.torch_threads),
                   "after": Server("after", REPO / "src", tmp / "after.log", a.torch_threads)}
        try:
            for s in servers.values():
                s.wait()
            for s in servers.values():  # warm-up: one request of each size
                for up in ups.values():
                    assert load(s.url, up, 1)["errors"] == 0, s.name
            res = {(v, k): {"wall": 0.0, "latency": [], "errors": 0, "n": 0} for v in servers for k in ups}
            answers = {}
            for r in range(a.rounds):
                for size in ups:
                    order = ["before", "after"] if (r + list(ups).index(size)) % 2 == 0 else ["after", "before"]
                    for v in order:
                        out = load(servers[v].url, ups[size], counts[size])
                        acc = res[(v, size)]
                        acc["wall"] += out["wall"]
                        acc["latency"] += out["latency"]
                        acc["errors"] += out["errors"]
                        acc["n"] += counts[size]
                        answers[(v, size)] = out["answer"]
            rss = {v: process_peak_rss_mb(s.proc.pid) for v, s in servers.items()}
        finally:
            for s in servers.values():
                s.stop()

    import torch
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end; "
          f"prism serve --no-ui --workers 1 --max-queue {CONCURRENCY} --torch-threads {a.torch_threads}, bundled "
          f"colorizer, PNG answers; {CONCURRENCY} concurrent clients on loopback; before = {a.before_rev}'s "
          f"colour path; {a.rounds} round(s)\n")
    print(f"{'upload':<10} {'colour path':<11} {'requests':>8} {'errors':>6} {'req/s':>7} {'p50 ms':>8} {'p95 ms':>8}"
          f"  {'req/s after/before':>18} {'p95 after/before':>16}")
    for size in ups:
        for v in ("before", "after"):
            acc = res[(v, size)]
            lat = np.array(acc["latency"]) * 1000
            acc["rps"], acc["p50"], acc["p95"] = acc["n"] / acc["wall"], np.percentile(lat, 50), np.percentile(lat, 95)
            ratio = "" if v == "before" else \
                f"  {acc['rps'] / res[('before', size)]['rps']:18.2f} {acc['p95'] / res[('before', size)]['p95']:16.2f}"
            print(f"{size:<10} {v:<11} {acc['n']:8d} {acc['errors']:6d} {acc['rps']:7.2f} {acc['p50']:8.0f} "
                  f"{acc['p95']:8.0f}{ratio}")
    print(f"\nserver peak RSS: before {rss['before']:.0f} MB, after {rss['after']:.0f} MB")
    for size in ups:
        x = np.asarray(Image.open(io.BytesIO(answers[("before", size)])).convert("RGB"), np.int16)
        y = np.asarray(Image.open(io.BytesIO(answers[("after", size)])).convert("RGB"), np.int16)
        d = np.abs(x - y)
        print(f"answers {size}, after vs before: {x.shape[1]}x{x.shape[0]}, max abs difference {d.max()} levels, "
              f"mean {d.mean():.3f}, {(d > 1).mean():.3%} of values more than 1 level apart")


if __name__ == "__main__":
    main()
