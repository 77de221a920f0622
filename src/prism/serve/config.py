"""Every limit and switch of the service in one place, with defaults safe for a single machine."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

MiB = 1024 * 1024


@dataclass
class ServeConfig:
    host: str = "127.0.0.1"            # loopback only unless the operator says otherwise
    port: int = 7860
    models_dir: Path | None = None     # extra saved models: each subdirectory holding a card.json
    bundled: bool = True               # also serve the models shipped inside the package
    max_upload_bytes: int = 32 * MiB   # whole request body; larger -> 413 before it is read
    max_pixels: int = 25_000_000       # one image (header check, before decoding); larger -> 413
    max_total_pixels: int | None = None  # all images of one request (default 2 x max_pixels): bounds memory
    max_images: int = 16               # images per request
    workers: int = 1                   # inference threads; torch already uses every core per call
    max_queue: int = 8                 # requests waiting for a worker; beyond -> 503 + Retry-After
    cors_origins: list[str] = field(default_factory=list)  # empty = no CORS headers at all
    ui_path: str = "/ui"               # where the Gradio app is mounted ("" = no web app)
    device: str = "cpu"
    torch_threads: int | None = None   # torch's intra-op threads for the process (None: torch's default)
    # long tasks run as jobs (jobs.py): their own threads; at most job_workers + max_queue unfinished
    job_workers: int = 1               # jobs running at once, beside the inference workers
    max_jobs: int = 32                 # jobs kept in memory, finished ones included (oldest finished go first)
    job_ttl_s: float = 3600.0          # a finished job (and its result) is forgotten this long after it ends

    def __post_init__(self):
        if self.models_dir is not None:
            self.models_dir = Path(self.models_dir)
        if self.max_total_pixels is None:
            self.max_total_pixels = 2 * self.max_pixels
        for name in ("max_upload_bytes", "max_pixels", "max_total_pixels", "max_images", "workers", "job_workers",
                     "max_jobs"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.max_queue < 0:
            raise ValueError("max_queue must be 0 or more")
        if not self.job_ttl_s > 0:
            raise ValueError("job_ttl_s must be more than 0")
        if self.ui_path and (not self.ui_path.startswith("/") or self.ui_path == "/"):
            # "/" would shadow the REST API routes mounted beside it
            raise ValueError("ui_path must look like /ui (or be empty to disable the web app)")
