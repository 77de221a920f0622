"""The Gradio web app: one tab per task that has a model loaded, mounted inside the API's app.

Uploads go through the same checks and the same bounded pool as the REST API (Service.run):
Gradio only hands over the files it stored in its own upload folder, and we read them only
from there. Results for download are written to a private temporary folder. A job task (a
restoration) is submitted as a job like on the API and followed with Gradio's progress bar.
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
import time
import typing
import weakref
from pathlib import Path

# no usage telemetry leaves the machine; set before gradio is imported, which reads it
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402
from gradio.utils import get_upload_folder  # noqa: E402
from PIL import Image  # noqa: E402
from pydantic import ValidationError  # noqa: E402

from prism.serve.errors import ServeError  # noqa: E402
from prism.serve.uploads import Upload  # noqa: E402

PREVIEW_SIDE = 1024  # the before/after view and gallery show at most this; downloads are full size


def mount_ui(app, service) -> None:
    cfg = service.config
    blocks = build_blocks(service)
    # Gradio's own queue lets `workers` UI jobs at a time into the shared pool; others wait in it
    blocks.queue(max_size=max(1, cfg.max_queue), default_concurrency_limit=cfg.workers)
    gr.mount_gradio_app(app, blocks, path=cfg.ui_path, max_file_size=cfg.max_upload_bytes,
                        footer_links=[], run_history=False, ssr_mode=False, mcp_server=False)


def build_blocks(service) -> gr.Blocks:
    tasks = service.served_tasks()
    outputs = OutputFolder()
    with gr.Blocks(title="PRISM", analytics_enabled=False, delete_cache=(900, 3600)) as blocks:
        gr.Markdown("## PRISM\nImage-to-image models on this machine. The same models answer on the "
                    "REST API: see `/docs`.")
        if not tasks:
            gr.Markdown("**No model is loaded.** Start `prism serve --models DIR` with saved PRISM models.")
        with gr.Tabs():
            for adapter in tasks.values():
                with gr.Tab(adapter.title, id=adapter.name, elem_id=f"tab-{adapter.name}"):
                    gr.Markdown(adapter.description)
                    (adapter.build_tab or image_task_tab)(service, adapter, outputs)
    return blocks


def image_task_tab(service, adapter, outputs: "OutputFolder") -> None:
    """Images in, images out: upload one or many, one control per option, before/after view of the
    selected result, all results for download. Works for any task whose options are simple."""
    name, models = adapter.name, service.store.names(adapter.model_task)
    option_names, extra_names = list(adapter.options.model_fields), list(adapter.extra_images)
    with gr.Row():
        with gr.Column():
            files = gr.File(label="Photos", file_count="multiple", file_types=["image"], elem_id=f"{name}-input")
            extras = [gr.File(label=f"{n.capitalize()} (optional): {about}", file_count="single", file_types=["image"],
                              elem_id=f"{name}-{n}") for n, about in adapter.extra_images.items()]
            model = gr.Dropdown(models, value=service.store.default(adapter.model_task), label="Model",
                                interactive=len(models) > 1, elem_id=f"{name}-model")
            controls = [option_control(n, f, f"{name}-{n}") for n, f in adapter.options.model_fields.items()]
            button = gr.Button(adapter.title, variant="primary", elem_id=f"{name}-run")
            stop = gr.Button("Stop", variant="stop", elem_id=f"{name}-stop") if adapter.job else None
        with gr.Column():
            compare = gr.ImageSlider(label="Before / after (drag)", type="pil", elem_id=f"{name}-compare")
            gallery = gr.Gallery(label="Results (click one to compare)", columns=6, height=180, object_fit="contain",
                                 elem_id=f"{name}-gallery")
            downloads = gr.File(label="Download (full size)", file_count="multiple", interactive=False,
                                elem_id=f"{name}-download")
    pairs = gr.State([])  # (before, after) previews of the last run, for gallery clicks

    async def run(paths, model_name, *values):
        if not paths:
            raise gr.Error("Upload at least one image first.")
        with _as_gradio_errors():
            options = adapter.options(**_unset_empty(adapter.options, dict(zip(option_names, values))))
            # file reads, PNG writes and previews are blocking work: off the event loop too
            uploads = await asyncio.to_thread(_read_uploads, paths, service.config.max_upload_bytes)
            _, results = await service.run(adapter, model_name, uploads, options, "png", with_sources=True)
        return await asyncio.to_thread(_present, results, outputs.new_run())

    # Gradio passes its progress tracker to the parameter whose default is gr.Progress()
    async def run_job(paths, model_name, progress=gr.Progress(), *values):
        if not paths:
            raise gr.Error("Upload at least one image first.")
        extra_paths, values = values[:len(extra_names)], values[len(extra_names):]
        sent = {n: p for n, p in zip(extra_names, extra_paths) if p}
        with _as_gradio_errors():
            options = adapter.options.model_validate(_unset_empty(adapter.options, dict(zip(option_names, values))),
                                                     context={"extra_images": set(sent)})
            read = await asyncio.to_thread(_read_uploads, [*paths, *sent.values()], service.config.max_upload_bytes)
            job = service.submit_job(adapter, model_name, read[:len(paths)], options, "png",
                                     dict(zip(sent, read[len(paths):])))
        try:
            await _follow(job, progress)
        except asyncio.CancelledError:  # the Stop button (Gradio cancels this task): stop the work too
            service.jobs.cancel(job.id)
            raise
        if job.status != "done":
            raise gr.Error(job.error["message"] if job.error else f"The job was {job.status}.")
        downloads = [(f.name, f.data) for f in job.files.values()]  # the images, and e.g. the latents
        return await asyncio.to_thread(_present, job.images, outputs.new_run(), downloads)

    event = button.click(run_job if adapter.job else run, [files, model, *extras, *controls],
                         [compare, gallery, downloads, pairs], api_name=f"{name}")
    if stop is not None:
        stop.click(None, None, None, cancels=[event], api_name=False)

    def show(previews, evt: gr.SelectData):
        return previews[evt.index] if previews and 0 <= evt.index < len(previews) else gr.skip()

    gallery.select(show, [pairs], [compare], api_name=False)


def _unset_empty(options, values: dict) -> dict:
    """Optional numbers left empty (None, or 0 where 0 is below their minimum) -> None: the default."""
    out = dict(values)
    for name, field in options.model_fields.items():
        low = next((m.ge for m in field.metadata if getattr(m, "ge", None) is not None), None)
        if field.default is None and out.get(name) is not None and low is not None and out[name] < low:
            out[name] = None
    return out


def option_control(name: str, field, elem_id: str):
    """A control for one option: a slider for bounded numbers, a dropdown for choices."""
    label, info, default = name.replace("_", " ").capitalize(), field.description, field.default
    bounds = {k: getattr(m, k) for m in field.metadata for k in ("ge", "le") if getattr(m, k, None) is not None}
    optional = [a for a in typing.get_args(field.annotation) if a is not type(None)]
    if default is None and len(optional) == 1 and optional[0] in (int, float):
        # a number whose default the model decides: an empty box means "the model's default"
        # (no minimum: the browser sends an emptied box as 0, which the options then read as unset)
        return gr.Number(value=None, label=label, info=info, elem_id=elem_id, maximum=bounds.get("le"),
                         precision=0 if optional[0] is int else None, placeholder="the model's default")
    if field.annotation in (int, float) and {"ge", "le"} <= bounds.keys():
        step = 1 if field.annotation is int else (bounds["le"] - bounds["ge"]) / 40
        return gr.Slider(bounds["ge"], bounds["le"], value=default, step=step, label=label, info=info, elem_id=elem_id)
    if field.annotation is bool:
        return gr.Checkbox(value=default, label=label, info=info, elem_id=elem_id)
    if typing.get_origin(field.annotation) is typing.Literal:
        return gr.Dropdown(list(typing.get_args(field.annotation)), value=default, label=label, info=info,
                           elem_id=elem_id)
    return gr.Number(value=default, label=label, info=info, elem_id=elem_id) if field.annotation in (int, float) \
        else gr.Textbox(value=default, label=label, info=info, elem_id=elem_id)


@contextlib.contextmanager
def _as_gradio_errors():
    """Bad options and refused uploads, shown in the page as the API would word them."""
    try:
        yield
    except ValidationError as e:
        raise gr.Error("; ".join(f"{'.'.join(map(str, x['loc'])) or 'options'}: {x['msg']}" for x in e.errors())) from None
    except ServeError as e:
        raise gr.Error(e.message) from None


async def _follow(job, progress, interval: float = 0.25) -> None:
    """Show a job's progress (steps, loss) in the tab until it ends."""
    while not job.is_final:
        report = job.progress
        if report is None:
            progress(0, desc="waiting for a worker" if job.status == "queued" else "starting")
        else:
            loss = f", loss {report['loss']:.4g}" if report["loss"] is not None else ""
            progress((report["step"], report["total"]), desc=f"{report['stage'] or 'working'}{loss}", unit="steps")
        await asyncio.sleep(interval)


def _read_uploads(paths: list[str], max_bytes: int) -> list[Upload]:
    """Read the files Gradio stored for this upload, refusing any path outside its upload folder
    and, like the API, more than `max_bytes` in all."""
    folder, files = Path(get_upload_folder()).resolve(), []
    for path in paths:
        p = Path(path).resolve()
        if not p.is_relative_to(folder) or not p.is_file():
            raise ServeError(400, "bad_upload", "upload not found")
        files.append(p)
    if sum(p.stat().st_size for p in files) > max_bytes:
        raise ServeError(413, "too_large", f"the uploads hold more than {max_bytes:,} bytes together")
    return [Upload(p.name, p.read_bytes()) for p in files]


def _present(results, folder: Path, files: list[tuple[str, bytes]] | None = None):
    """-> the before/after view, the gallery, the download files, the previews for gallery clicks.
    `files`: the downloads as (unique name, bytes); default: the results, numbered when several."""
    if files is None:
        files = [(r.name if len(results) == 1 else f"{i + 1:02d}-{r.name}", r.data) for i, r in enumerate(results)]
    saved = []
    for name, data in files:
        path = folder / name
        path.write_bytes(data)
        saved.append(str(path))
    previews = [(_preview(r.source), _preview(r.image)) for r in results]
    return previews[0], [(after, r.name) for (_, after), r in zip(previews, results)], saved, previews


def _preview(image: Image.Image | None) -> Image.Image | None:
    if image is None or max(image.size) <= PREVIEW_SIDE:
        return image
    small = image.copy()
    small.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE), Image.Resampling.LANCZOS)
    return small


class OutputFolder:
    """Result files for downloads, in a private temporary folder. Gradio copies each returned file
    into its own cache, so a run's folder can go soon after; folders older than `keep_s` are swept
    at each new run, and the whole folder when the process ends."""

    def __init__(self, keep_s: float = 600):
        self.root, self.keep_s = Path(tempfile.mkdtemp(prefix="prism-serve-")), keep_s
        weakref.finalize(self, shutil.rmtree, self.root, True)

    def new_run(self) -> Path:
        cutoff = time.time() - self.keep_s
        for old in self.root.iterdir():
            if old.stat().st_mtime < cutoff:
                shutil.rmtree(old, ignore_errors=True)
        return Path(tempfile.mkdtemp(dir=self.root))
