"""Bounded inference off the event loop: a few worker threads and a short waiting line.

A request that would wait behind more than `max_queue` others is refused at once (503 with
Retry-After) instead of piling up memory and latency: the client can retry or go elsewhere.
"""
from __future__ import annotations

import asyncio
import math
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor

from prism.serve.errors import QueueFull


class InferencePool:
    def __init__(self, workers: int = 1, max_queue: int = 8):
        self.workers, self.max_queue = workers, max_queue
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="prism-infer")
        self._lock = threading.Lock()
        self._pending = 0          # running + waiting jobs
        self._job_seconds = 1.0    # running mean of job durations, for Retry-After

    @property
    def pending(self) -> int:
        return self._pending

    @property
    def capacity(self) -> int:
        return self.workers + self.max_queue

    def retry_after(self) -> int:
        """Seconds until a slot is likely free: the line ahead, drained by the workers."""
        return max(1, math.ceil(self._job_seconds * self._pending / self.workers))

    def submit(self, fn, *args, **kwargs) -> Future:
        with self._lock:
            if self._pending >= self.capacity:
                raise QueueFull(self.retry_after())
            self._pending += 1
        try:
            return self._executor.submit(self._timed, fn, *args, **kwargs)
        except BaseException:
            self._release(None)
            raise

    async def run(self, fn, *args, **kwargs):
        """Await `fn(*args)` in a worker thread. A cancelled caller (client gone) does not cancel
        the job: its slot is held until the job really ends, so the bound stays true."""
        return await asyncio.wrap_future(self.submit(fn, *args, **kwargs))

    def _timed(self, fn, *args, **kwargs):
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            self._release(time.perf_counter() - start)

    def _release(self, seconds: float | None) -> None:
        with self._lock:
            self._pending -= 1
            if seconds is not None:
                self._job_seconds = 0.8 * self._job_seconds + 0.2 * seconds

    def stats(self) -> dict:
        return {"workers": self.workers, "max_queue": self.max_queue, "pending": self._pending,
                "mean_job_s": round(self._job_seconds, 4)}

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
