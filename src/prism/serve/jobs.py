"""Long tasks as jobs: submit, poll, fetch the result, cancel.

A task whose run takes tens of seconds or minutes (a restoration's hundreds of projection steps)
must not hold an HTTP request open. Its adapter sets `job=True`: its POST answers 202 with a job
id at once, and the work runs in this store's own worker threads. It does not use the inference
pool, so short requests do not wait behind a job of several minutes. The run reports progress
through a JobContext. A cancel request reaches the run the same way: the next progress report
raises JobCancelled.

Jobs live in memory only, and their number is bounded:
- at most `workers + max_waiting` jobs are unfinished at once; a new job beyond that gets a 503
  with Retry-After;
- at most `max_jobs` jobs are kept in all; when the store is full, the oldest finished job goes
  first;
- a finished job expires `ttl_s` seconds after it ends.
"""
from __future__ import annotations

import logging
import math
import secrets
import threading
import time
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable

from PIL import Image

from prism.serve.errors import ServeError, error_body

log = logging.getLogger("prism.serve")
STATUSES = ("queued", "running", "done", "failed", "cancelled")
FINAL = ("done", "failed", "cancelled")


class JobCancelled(Exception):
    """Raised inside a job's run, by JobContext.progress, once the job has been cancelled."""


@dataclass
class JobFile:
    name: str          # unique within the job: the download's name and its URL
    media_type: str
    data: bytes


@dataclass
class Job:
    id: str            # random and unguessable: the service has no accounts, so the id is the key
    task: str
    model: str
    status: str = "queued"
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    progress: dict | None = None      # {"step", "total", "loss", "stage"}: the latest report of the run
    error: dict | None = None         # the API's error body, when the job failed
    images: list = field(default_factory=list)                  # service Results: the task's images
    files: dict[str, JobFile] = field(default_factory=dict)     # every download by name, images included
    cancel_requested: threading.Event = field(default_factory=threading.Event)
    future: Future | None = None

    @property
    def is_final(self) -> bool:
        return self.status in FINAL


class JobContext:
    """What a job's run receives as its fourth argument:
    - the adapter's extra images that were sent (e.g. a mask);
    - the client's file names of the uploads, for error messages;
    - `progress()`, which also stops the run once the job is cancelled;
    - `attach()`, for extra result files;
    - `before`, for the image to show as "before" in the web app's comparison."""

    def __init__(self, job: Job, names: list[str], extras: dict | None = None):
        self.job, self.names, self.extras = job, names, extras or {}
        self.attachments: list[tuple[int, str, str, bytes]] = []  # (upload index, suffix, media type, data)
        self.before: dict[int, Image.Image] = {}  # upload index -> the "before" image, if not the upload

    def progress(self, step: int, total: int, loss: float | None = None, stage: str | None = None) -> None:
        if self.job.cancel_requested.is_set():
            raise JobCancelled()
        loss = float(loss) if loss is not None and math.isfinite(loss) else None  # JSON has no NaN
        self.job.progress = {"step": int(step), "total": int(total), "loss": loss, "stage": stage}

    def attach(self, index: int, suffix: str, media_type: str, data: bytes) -> None:
        """An extra download for upload `index`, named <upload stem>-<suffix>, e.g. 'w.npy'."""
        self.attachments.append((index, suffix, media_type, data))


# the work of one job: Job -> (the task's images as service Results, extra files)
JobWork = Callable[[Job], tuple[list, list[JobFile]]]


class JobStore:
    def __init__(self, workers: int = 1, max_waiting: int = 8, max_jobs: int = 32, ttl_s: float = 3600.0):
        self.workers, self.max_waiting, self.max_jobs, self.ttl_s = workers, max_waiting, max_jobs, ttl_s
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="prism-job")
        self._lock = threading.Lock()
        self._jobs: OrderedDict[str, Job] = OrderedDict()  # oldest first
        self._job_seconds = 60.0  # running mean of job durations, for Retry-After

    @property
    def capacity(self) -> int:
        """How many jobs may be unfinished at once."""
        return self.workers + self.max_waiting

    def submit(self, task: str, model: str, work: JobWork) -> Job:
        with self._lock:
            self._expire()
            unfinished = sum(not j.is_final for j in self._jobs.values())
            if unfinished >= self.capacity:
                wait = max(1, math.ceil(self._job_seconds * unfinished / self.workers))
                raise ServeError(503, "busy", f"{unfinished} jobs are queued or running, the most this server "
                                              f"takes; retry in {wait} s", {"Retry-After": str(wait)})
            while len(self._jobs) >= self.max_jobs:  # make room: the oldest finished job goes first
                oldest = next((i for i, j in self._jobs.items() if j.is_final), None)
                if oldest is None:
                    raise ServeError(503, "busy", "the job store is full; retry later", {"Retry-After": "60"})
                del self._jobs[oldest]
            job = Job(secrets.token_hex(16), task, model)
            self._jobs[job.id] = job
        job.future = self._executor.submit(self._run, job, work)
        return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            self._expire()
            return self._jobs.get(job_id) if isinstance(job_id, str) else None

    def cancel(self, job_id: str) -> Job | None:
        """Cancel an unfinished job, or forget a finished one. A queued job is cancelled at once. A
        running job stops at its next progress report: until then it still reads "running"."""
        with self._lock:
            job = self._jobs.get(job_id) if isinstance(job_id, str) else None
            if job is None:
                return None
            if job.is_final:
                del self._jobs[job_id]
            else:
                job.cancel_requested.set()
                if job.status == "queued":
                    self._finish(job, "cancelled")
                    if job.future is not None:
                        job.future.cancel()
        return job

    def _run(self, job: Job, work: JobWork) -> None:
        with self._lock:
            if job.status != "queued":  # cancelled while it waited
                return
            job.status, job.started = "running", time.time()
        try:
            images, files = work(job)
        except JobCancelled:
            outcome = ("cancelled", None, [], [])
        except ServeError as e:  # the client's problem, said the way the API says it
            outcome = ("failed", error_body(e.status, e.code, e.message), [], [])
        except Exception:  # noqa: BLE001 - a bug must fail the job, not kill the worker
            log.exception("job %s (%s) failed", job.id, job.task)
            outcome = ("failed", error_body(500, "internal", "internal server error; see the server log"), [], [])
        else:
            outcome = ("done", None, images, files)
        status, error, images, files = outcome
        with self._lock:
            job.error, job.images = error, images
            job.files = {f.name: f for f in files}
            self._finish(job, status)
            self._job_seconds = 0.8 * self._job_seconds + 0.2 * (job.finished - job.started)

    def _finish(self, job: Job, status: str) -> None:
        job.status, job.finished = status, time.time()

    def _expire(self) -> None:
        """Drop finished jobs older than the time to live (called with the lock held)."""
        cutoff = time.time() - self.ttl_s
        for job_id in [i for i, j in self._jobs.items() if j.is_final and j.finished < cutoff]:
            del self._jobs[job_id]

    def expires_at(self, job: Job) -> float | None:
        return job.finished + self.ttl_s if job.finished is not None else None

    def stats(self) -> dict:
        with self._lock:
            counts = {s: 0 for s in STATUSES}
            for job in self._jobs.values():
                counts[job.status] += 1
        return {"workers": self.workers, "capacity": self.capacity, "max_jobs": self.max_jobs,
                "ttl_s": self.ttl_s, **counts}

    def shutdown(self) -> None:
        """Ask every unfinished job to stop, so no projection keeps the process alive at exit."""
        with self._lock:
            for job in self._jobs.values():
                job.cancel_requested.set()
        self._executor.shutdown(wait=False, cancel_futures=True)
