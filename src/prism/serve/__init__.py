"""PRISM as a service: `prism serve` / `create_app()` -> one FastAPI app with the REST API
(POST /v1/{task}, GET /v1/models, /healthz, /metrics) and a Gradio web app at /ui.

Tasks plug in through `prism.serve.tasks.register_task` (see prism/serve/colorize.py).
"""
from prism.serve.config import ServeConfig


def create_app(config: ServeConfig | None = None, store=None):
    from prism.serve.app import create_app as _create
    return _create(config, store)


__all__ = ["ServeConfig", "create_app"]
