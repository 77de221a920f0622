"""A bounded load test on loopback: `prism serve` in a subprocess on a free 127.0.0.1 port,
200 colorize requests from 8 concurrent clients. Asserts that every request succeeds; prints
(and writes to test-artifacts/serve-load.json) the client-side p50/p95 latency, the throughput,
the server's own /metrics quantiles and its peak RSS. Numbers are reported, never asserted:
this machine may be busy with other work."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from prism.serve.testing import concurrent_posts, encoded, free_port, photo, process_peak_rss_mb, save_tiny_colorizer

REPO = Path(__file__).resolve().parents[1]
REQUESTS, CONCURRENCY = 200, 8
IMAGE_SIZE = (128, 160)


@pytest.fixture()
def server(tmp_path):
    save_tiny_colorizer(tmp_path / "models" / "tiny")
    port = free_port()
    log = open(tmp_path / "server.log", "w+")
    proc = subprocess.Popen(
        [sys.executable, "-m", "prism.cli", "serve", "--models", str(tmp_path / "models"), "--no-bundled",
         "--no-ui", "--host", "127.0.0.1", "--port", str(port), "--max-queue", str(CONCURRENCY),
         "--torch-threads", "1"],  # this CPU is shared with other work: one thread each is faster
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                pytest.fail(f"the server did not start:\n{log.read()[-3000:]}")
            time.sleep(0.2)
        yield url, proc
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.mark.slow
def test_200_requests_at_8_concurrent_all_succeed(server, capsys):
    url, proc = server
    images = [encoded(photo(*IMAGE_SIZE, seed=i)) for i in range(8)]

    wall, results = concurrent_posts(url + "/v1/colorize", lambda i: {
        "files": {"image": (f"p{i}.png", images[i % len(images)])}, "data": {"saturation": "1.2"}}, REQUESTS, CONCURRENCY)
    results = [(status, seconds) for status, seconds, _ in results]
    statuses = [s for s, _ in results]
    server_side = httpx.get(url + "/metrics", timeout=10).json()["endpoints"]["POST /v1/colorize"]
    latency = np.array([t for _, t in results]) * 1000
    report = {
        "requests": REQUESTS, "concurrency": CONCURRENCY, "image": f"{IMAGE_SIZE[1]}x{IMAGE_SIZE[0]} gray PNG",
        "model": "tiny test UNet (depth 3, width 8, render size 64)",
        "errors": sum(s != 200 for s in statuses), "wall_s": round(wall, 2),
        "throughput_rps": round(REQUESTS / wall, 1),
        "client_latency_ms": {"p50": round(float(np.percentile(latency, 50)), 1),
                              "p95": round(float(np.percentile(latency, 95)), 1),
                              "max": round(float(latency.max()), 1)},
        "server_latency_ms": server_side["latency_ms"], "server_peak_rss_mb": process_peak_rss_mb(proc.pid),
        "cpus": os.cpu_count(), "torch_threads": 1,
    }
    (REPO / "test-artifacts").mkdir(exist_ok=True)
    (REPO / "test-artifacts" / "serve-load.json").write_text(json.dumps(report, indent=2) + "\n")
    with capsys.disabled():
        print(f"\nload test: {json.dumps(report)}")
    assert statuses == [200] * REQUESTS, f"non-200 answers: {sorted(set(statuses))}"
    assert server_side["status"] == {"200": REQUESTS}
