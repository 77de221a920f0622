"""Task adapters: what the service needs to know about a task, so a new task adds a tab and an
endpoint by registering one `TaskAdapter` (see colorize.py) instead of editing the core.

An adapter names the task (its URL; `task` when the predictor's `.task` differs, e.g. restore serves
stylegan models), gives its options as a pydantic model
(validated the same way for the REST API and the web app; the API's form fields and OpenAPI
schema are generated from it) and a `run` function from decoded images to result images.
`build_tab` is optional: by default the web app builds a generic tab with one control per option.

A long task (minutes, like a restoration) sets `job=True`: its POST answers 202 with a job to poll
(jobs.py) and its `run` gets a fourth argument, a JobContext, to report progress (which is also
where a cancel request stops it), read its `extra_images` (e.g. a mask) and attach extra files.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

from PIL import Image
from pydantic import BaseModel

from prism.data.images import LoadedImage

RunFn = Callable[..., list[Image.Image]]  # (predictor, images, options[, job context]) -> images


@dataclass(frozen=True)
class TaskAdapter:
    name: str                         # the URL, POST /v1/{name}, and the tab's id
    title: str                        # tab and OpenAPI tag
    description: str                  # one line for the docs and the tab
    options: type[BaseModel]          # task options (defaults for every field), e.g. saturation
    run: RunFn                        # (predictor, images, options) -> images, in a worker thread
    build_tab: Optional[Callable] = None  # (service, adapter) -> None, inside a gr.Tab; None = generic
    result_suffix: str = "result"     # download names: <upload stem>-<suffix>.png
    task: str = ""                    # the predictor's `.task` it serves; "" = same as name
    job: bool = False                 # long task: run as a job (jobs.py); run(..., context)
    extra_images: dict[str, str] = field(default_factory=dict)  # job tasks: optional image fields -> help

    @property
    def model_task(self) -> str:
        """Which models this adapter serves: those whose predictor has this `.task`."""
        return self.task or self.name


TASK_ADAPTERS: dict[str, TaskAdapter] = {}


def register_task(adapter: TaskAdapter) -> TaskAdapter:
    if adapter.name in TASK_ADAPTERS:
        raise ValueError(f"task adapter '{adapter.name}' is already registered")
    for name in ("model", "format", "image", *adapter.extra_images):  # names the API's other fields take
        if name in adapter.options.model_fields:
            raise ValueError(f"task options may not define '{name}': it is a common API field or an extra image")
    if adapter.extra_images and not adapter.job:  # only a job's run has a context to receive them
        raise ValueError("extra_images need job=True")
    TASK_ADAPTERS[adapter.name] = adapter
    return adapter


def adapters() -> dict[str, TaskAdapter]:
    """All registered adapters; importing the adapter modules registers them."""
    from prism.serve import colorize, restore, synthesize, translate  # noqa: F401  (register adapters; add new tasks here)
    return TASK_ADAPTERS
