"""Helpers for testing the service (ours and a new task adapter's): a tiny model, encoded test
images, and a real uvicorn server on a free loopback port in a background thread."""
from __future__ import annotations

import contextlib
import io
import socket
import struct
import threading
import time
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

TINY_G = {"arch": "unet", "in_channels": 1, "out_channels": 2, "depth": 3, "width": 8, "dropout": 0.0}


def save_tiny_colorizer(out_dir: str | Path, seed: int = 0) -> Path:
    """A tiny untrained colorizer (as in tests/test_inference.py), weights perturbed so its chroma
    is clearly visible; a second's work on a CPU."""
    import torch

    from prism.modelio import save_model
    from prism.nets.unet import UNet
    torch.manual_seed(seed)
    net = UNet(**{k: v for k, v in TINY_G.items() if k != "arch"})
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return save_model(out_dir, {"G": net}, {"task": "colorize", "nets": {"G": TINY_G}, "options": {"render_size": 64}})


def photo(h: int = 48, w: int = 64, seed: int = 0, gray: bool = True) -> np.ndarray:
    """Smooth content with some texture: HxW (gray) or HxWx3 uint8."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    rng = np.random.default_rng(seed)
    base = np.stack([255 * x / max(w - 1, 1), 255 * y / max(h - 1, 1),
                     128 + 100 * np.sin(x / 5.0) * np.cos(y / 7.0)], axis=2)
    rgb = np.clip(base + rng.normal(0, 12, (h, w, 3)), 0, 255).astype(np.uint8)
    return np.asarray(Image.fromarray(rgb).convert("L")) if gray else rgb


def encoded(array: np.ndarray, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, fmt)
    return buf.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares width x height pixels but carries almost no data: a decompression bomb
    stand-in whose header alone must be enough to refuse it."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grayscale
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


def process_peak_rss_mb(pid: int) -> float | None:
    """The process's high-water resident set (VmHWM), Linux only."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_server(app, timeout: float = 60.0):
    """Serve `app` with uvicorn on 127.0.0.1 (a port the OS picks) in a thread; yields the base
    URL and stops the server on exit."""
    import uvicorn
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout)
        sock.close()


def concurrent_posts(url: str, request, n: int, concurrency: int, timeout: float = 60.0):
    """n POSTs to url from `concurrency` clients (one httpx client each, on threads): request(i) ->
    dict of httpx.post keyword arguments (files, data). -> (wall seconds, [(status, seconds,
    body)]), the results in request order."""
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    def one(i: int, client: httpx.Client):
        start = time.perf_counter()
        r = client.post(url, **request(i))
        return r.status_code, time.perf_counter() - start, r.content

    clients = [httpx.Client(timeout=timeout) for _ in range(concurrency)]
    try:
        start = time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            results = list(pool.map(lambda i: one(i, clients[i % concurrency]), range(n)))
        return time.perf_counter() - start, results
    finally:
        for c in clients:
            c.close()
