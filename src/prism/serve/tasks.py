"""Task adapters: what the service needs to know about a task, so a new task adds a tab and an
endpoint by registering one `TaskAdapter` (see colorize.py) instead of editing the core.

An adapter names the task (the predictor's `.task`), gives its options as a pydantic model
(validated the same way for the REST API and the web app; the API's form fields and OpenAPI
schema are generated from it) and a `run` function from decoded images to result images.
`build_tab` is optional: by default the web app builds a generic tab with one control per option.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

from PIL import Image
from pydantic import BaseModel

from prism.data.images import LoadedImage

RunFn = Callable[[object, list[LoadedImage], BaseModel], list[Image.Image]]


@dataclass(frozen=True)
class TaskAdapter:
    name: str                         # == the predictor's `.task`, and the URL: POST /v1/{name}
    title: str                        # tab and OpenAPI tag
    description: str                  # one line for the docs and the tab
    options: type[BaseModel]          # task options (defaults for every field), e.g. saturation
    run: RunFn                        # (predictor, images, options) -> images, in a worker thread
    build_tab: Optional[Callable] = None  # (service, adapter) -> None, inside a gr.Tab; None = generic
    result_suffix: str = "result"     # download names: <upload stem>-<suffix>.png


TASK_ADAPTERS: dict[str, TaskAdapter] = {}


def register_task(adapter: TaskAdapter) -> TaskAdapter:
    if adapter.name in TASK_ADAPTERS:
        raise ValueError(f"task adapter '{adapter.name}' is already registered")
    for field in ("model", "format", "image"):  # names the common API fields take
        if field in adapter.options.model_fields:
            raise ValueError(f"task options may not define '{field}': it is a common API field")
    TASK_ADAPTERS[adapter.name] = adapter
    return adapter


def adapters() -> dict[str, TaskAdapter]:
    """All registered adapters; importing the adapter modules registers them."""
    from prism.serve import colorize, synthesize, translate  # noqa: F401  (register adapters; add new tasks here)
    return TASK_ADAPTERS
