"""The service core shared by the REST API and the web app: look a model up by name, check
uploads, run the task in the bounded pool (or, for a long task, as a job), encode the results."""
from __future__ import annotations

from dataclasses import dataclass, field

from PIL import Image
from pydantic import BaseModel

from prism.data.images import LoadedImage, float_to_pil

from prism.serve import uploads as U
from prism.serve.config import ServeConfig
from prism.serve.errors import ServeError
from prism.serve.jobs import Job, JobContext, JobFile, JobStore
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
    jobs: JobStore | None = None

    def __post_init__(self):
        if self.jobs is None:  # its threads start only when a first job is submitted
            cfg = self.config
            self.jobs = JobStore(cfg.job_workers, cfg.max_queue, cfg.max_jobs, cfg.job_ttl_s)

    @classmethod
    def create(cls, config: ServeConfig, store: ModelStore | None = None) -> "Service":
        if store is None:
            store = ModelStore.discover(config.models_dir, bundled=config.bundled, device=config.device)
        return cls(config, store, InferencePool(config.workers, config.max_queue))

    def served_tasks(self) -> dict[str, TaskAdapter]:
        """Adapters of tasks that have at least one model loaded: only these get a tab and a route."""
        return {name: a for name, a in adapters().items() if self.store.names(a.model_task)}

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
        model = self.lookup(adapter.model_task, model_name)
        cfg = self.config
        U.check_headers(uploads, cfg.max_pixels, cfg.max_total_pixels, cfg.max_images)
        results = await self.pool.run(self._work, adapter, model, uploads, options, fmt, with_sources)
        return model, results

    def submit_job(self, adapter: TaskAdapter, model_name: str | None, uploads: list[U.Upload], options: BaseModel,
                   fmt: str = "png", extras: dict[str, U.Upload] | None = None) -> Job:
        """The same checks as run(), then the work is queued as a job (adapters with job=True); returns
        at once. `extras`: the adapter's extra images that were sent, by field name."""
        model = self.lookup(adapter.model_task, model_name)
        cfg, extras = self.config, extras or {}
        U.check_headers(uploads, cfg.max_pixels, cfg.max_total_pixels, cfg.max_images)
        if extras:
            U.check_headers(list(extras.values()), cfg.max_pixels, cfg.max_total_pixels, len(extras))
        return self.jobs.submit(adapter.name, model.name,
                                lambda job: self._job_work(adapter, model, uploads, extras, options, fmt, job))

    def _job_work(self, adapter, model, uploads, extras, options, fmt, job: Job) -> tuple[list[Result], list[JobFile]]:
        """In a job thread: like _work, with a context for progress, extra images and extra files."""
        context = JobContext(job, [up.name for up in uploads],
                             {name: U.decode(up, self.config.max_pixels) for name, up in extras.items()})
        results = self._work(adapter, model, uploads, options, fmt, True, context)
        # downloads are looked up by name and two uploads may share a stem: number them when several
        prefix = [f"{i + 1:02d}-" if len(uploads) > 1 else "" for i in range(len(uploads))]
        for i, r in enumerate(results):
            r.name = prefix[i] + r.name
            r.source = context.before.get(i, r.source)
        files = [JobFile(f"{prefix[i]}{U.safe_stem(uploads[i].name)}-{suffix}", media, data)
                 for i, suffix, media, data in context.attachments]
        return results, [JobFile(r.name, r.media_type, r.data) for r in results] + files

    def _work(self, adapter: TaskAdapter, model: ServedModel, uploads, options, fmt, with_sources,
              context: JobContext | None = None) -> list[Result]:
        """In a worker thread: decode, run, encode (all CPU-bound, none on the event loop)."""
        images = [U.decode(up, self.config.max_pixels) for up in uploads]
        outputs = adapter.run(model.predictor, images, options, *([context] if context is not None else []))
        ext = "jpg" if fmt == "jpeg" else "png"
        return [Result(f"{U.safe_stem(up.name)}-{adapter.result_suffix}.{ext}", U.MEDIA_TYPES[fmt],
                       U.encode(out, fmt), *out.size, image=out, source=_to_pil(im) if with_sources else None)
                for up, im, out in zip(uploads, images, outputs, strict=True)]

    def close(self) -> None:
        self.pool.shutdown()
        self.jobs.shutdown()


def _to_pil(image: LoadedImage) -> Image.Image:
    if image.pixels.dtype.name == "uint8":
        return Image.fromarray(image.pixels)
    return float_to_pil(image.rgb, image.alpha)
