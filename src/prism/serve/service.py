"""The service core shared by the REST API and the web app: look a model up by name, check
uploads, run the task in the bounded pool, encode the results."""
from __future__ import annotations

from dataclasses import dataclass, field

from PIL import Image
from pydantic import BaseModel

from prism.data.images import LoadedImage, float_to_pil

from prism.serve import uploads as U
from prism.serve.config import ServeConfig
from prism.serve.errors import ServeError
from prism.serve.metrics import Metrics
from prism.serve.models import ModelStore, ServedModel
from prism.serve.pool import InferencePool
from prism.serve.tasks import TaskAdapter, adapters


@dataclass
class Result:
    name: str        # suggested file name, e.g. "photo-colorized.png" (sanitised)
    media_type: str
    data: bytes
    width: int
    height: int
    image: Image.Image                  # the result itself, for the web app's previews
    source: Image.Image | None = None   # the decoded upload, when asked for (before/after view)


@dataclass
class Service:
    config: ServeConfig
    store: ModelStore
    pool: InferencePool
    metrics: Metrics = field(default_factory=Metrics)

    @classmethod
    def create(cls, config: ServeConfig, store: ModelStore | None = None) -> "Service":
        if store is None:
            store = ModelStore.discover(config.models_dir, bundled=config.bundled, device=config.device)
        return cls(config, store, InferencePool(config.workers, config.max_queue))

    def served_tasks(self) -> dict[str, TaskAdapter]:
        """Adapters of tasks that have at least one model loaded: only these get a tab and a route."""
        return {name: a for name, a in adapters().items() if self.store.names(name)}

    def lookup(self, task: str, name: str | None) -> ServedModel:
        name = name or self.store.default(task)
        model = self.store.get(name) if name else None
        if model is None:
            shown = repr(name[:80]) if isinstance(name, str) else "(none)"
            raise ServeError(404, "model_not_found", f"model {shown} not found; models for {task}: "
                                                     f"{', '.join(self.store.names(task)) or '(none)'}")
        if model.task != task:
            raise ServeError(422, "wrong_task", f"model '{model.name}' is a {model.task} model, not {task}")
        return model

    async def run(self, adapter: TaskAdapter, model_name: str | None, uploads: list[U.Upload],
                  options: BaseModel, fmt: str = "png", with_sources: bool = False) -> tuple[ServedModel, list[Result]]:
        model = self.lookup(adapter.name, model_name)
        cfg = self.config
        U.check_headers(uploads, cfg.max_pixels, cfg.max_total_pixels, cfg.max_images)
        results = await self.pool.run(self._work, adapter, model, uploads, options, fmt, with_sources)
        return model, results

    def _work(self, adapter: TaskAdapter, model: ServedModel, uploads, options, fmt, with_sources) -> list[Result]:
        """In a worker thread: decode, run, encode (all CPU-bound, none on the event loop)."""
        images = [U.decode(up, self.config.max_pixels) for up in uploads]
        outputs = adapter.run(model.predictor, images, options)
        ext = "jpg" if fmt == "jpeg" else "png"
        return [Result(f"{U.safe_stem(up.name)}-{adapter.result_suffix}.{ext}", U.MEDIA_TYPES[fmt],
                       U.encode(out, fmt), *out.size, image=out, source=_to_pil(im) if with_sources else None)
                for up, im, out in zip(uploads, images, outputs, strict=True)]

    def close(self) -> None:
        self.pool.shutdown()


def _to_pil(image: LoadedImage) -> Image.Image:
    if image.pixels.dtype.name == "uint8":
        return Image.fromarray(image.pixels)
    return float_to_pil(image.rgb, image.alpha)
