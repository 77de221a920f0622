"""In-process request metrics: counts by status and latency quantiles per endpoint.

Latencies are kept in a ring of the last `window` requests per endpoint, so quantiles describe
recent traffic and memory stays bounded; counts are totals since start. Endpoints are route
templates ("POST /v1/colorize"), never raw paths, so the set of keys stays small.
"""
from __future__ import annotations

import math
import threading
import time
from collections import Counter, deque

QUANTILES = (0.5, 0.95, 0.99)


class Metrics:
    def __init__(self, window: int = 2048):
        self.window = window
        self.started = time.time()
        self._lock = threading.Lock()
        self._counts: dict[str, Counter] = {}
        self._latency: dict[str, deque] = {}

    def record(self, endpoint: str, status: int, seconds: float) -> None:
        with self._lock:
            self._counts.setdefault(endpoint, Counter())[status] += 1
            self._latency.setdefault(endpoint, deque(maxlen=self.window)).append(seconds)

    def snapshot(self) -> dict:
        with self._lock:
            items = [(e, dict(c), sorted(self._latency[e])) for e, c in self._counts.items()]
        endpoints = {}
        for endpoint, counts, lat in sorted(items):
            endpoints[endpoint] = {
                "count": sum(counts.values()),
                "errors": sum(n for s, n in counts.items() if s >= 400),
                "status": {str(s): n for s, n in sorted(counts.items())},
                "latency_ms": {f"p{round(q * 100)}": round(_quantile(lat, q) * 1000, 2) for q in QUANTILES},
            }
        return {"uptime_s": round(time.time() - self.started, 1), "endpoints": endpoints}

    def prometheus(self, extra: dict[str, float] | None = None) -> str:
        """The same numbers in Prometheus' text format, for scrapers."""
        snap = self.snapshot()
        lines = ["# TYPE prism_requests_total counter"]
        for e, v in snap["endpoints"].items():
            lines += [f'prism_requests_total{{endpoint="{e}",status="{s}"}} {n}' for s, n in v["status"].items()]
        lines.append("# TYPE prism_request_latency_seconds summary")
        for e, v in snap["endpoints"].items():
            lines += [f'prism_request_latency_seconds{{endpoint="{e}",quantile="{q}"}} '
                      f'{v["latency_ms"][f"p{round(q * 100)}"] / 1000:.6f}' for q in QUANTILES]
        for name, value in (extra or {}).items():
            lines += [f"# TYPE {name} gauge", f"{name} {value}"]
        return "\n".join(lines) + "\n"


def _quantile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank quantile: always a latency that was really observed."""
    if not sorted_values:
        return 0.0
    return sorted_values[min(len(sorted_values) - 1, max(0, math.ceil(q * len(sorted_values)) - 1))]


class MetricsMiddleware:
    """Pure ASGI (no BaseHTTPMiddleware): times each HTTP request from its start to the last body
    byte and files it under its route template, looked up after routing has run."""

    METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}

    def __init__(self, app, metrics: Metrics, ui_path: str = "", routes_of=None):
        self.app, self.metrics, self.ui_path = app, metrics, ui_path
        self.routes_of, self._paths = routes_of, None  # the FastAPI app, for requests refused before routing

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start, status = time.perf_counter(), [500]

        async def send_wrapper(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            method = scope["method"] if scope["method"] in self.METHODS else "OTHER"  # keys stay bounded
            self.metrics.record(f"{method} {self._template(scope)}", status[0], time.perf_counter() - start)

    def _template(self, scope) -> str:
        path = scope.get("path", "")
        if self.ui_path and (path == self.ui_path or path.startswith(self.ui_path + "/")):
            return self.ui_path + "/*"  # the web app's many asset and queue routes, as one
        route = getattr(scope.get("route"), "path", None)
        if route is None and self.routes_of is not None:  # e.g. a 413 answered before routing
            if self._paths is None:
                self._paths = {getattr(r, "path", None) for r in self.routes_of.routes}
            route = path if path in self._paths else None
        return route or "(unmatched)"
