"""REST API: POST /v1/{task}, GET /v1/models, GET /healthz, GET /metrics, JSON errors; for job
tasks, /v1/jobs (jobs_api.py).

A task's route is generated from its adapter: its options model becomes form fields (so they
are validated by FastAPI and documented in the OpenAPI schema) next to the common `image`,
`model` and `format` fields (and a job task's extra image fields). (No `from __future__ import
annotations` here: FastAPI reads the generated annotations at runtime.)
"""
import inspect
import logging
from typing import Annotated, Literal, Optional
from urllib.parse import quote

from fastapi import FastAPI, File, Form, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, Field, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from prism.serve import uploads as U
from prism.serve.errors import ErrorBody, ServeError, error_body
from prism.serve.jobs_api import SUBMIT_RESPONSES, accepted, add_job_routes
from prism.serve.service import Service
from prism.serve.tasks import TaskAdapter

log = logging.getLogger("prism.serve")
COMMON_FIELDS = ("image", "model", "format")
HTTP_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 413: "too_large",
              415: "not_an_image", 422: "invalid_options", 503: "busy"}


class ImageOut(BaseModel):
    filename: str
    media_type: str
    width: int
    height: int
    data: str = Field(description="the encoded image, base64")


class ImagesOut(BaseModel):
    task: str
    model: str
    images: list[ImageOut]


class ModelInfo(BaseModel):
    name: str
    task: str
    source: str
    default: bool
    networks: dict[str, Optional[str]]
    options: dict
    metrics: dict
    steps: Optional[int] = None
    license: Optional[str] = None


class ModelsOut(BaseModel):
    tasks: list[str]
    models: list[ModelInfo]


class HealthOut(BaseModel):
    status: Literal["ok", "no_models"]
    models: int
    queue: dict


def add_api(app: FastAPI, service: Service) -> None:
    _add_error_handlers(app)
    app.add_middleware(DeclaredSizeGate, max_bytes=service.config.max_upload_bytes)

    @app.get("/healthz", response_model=HealthOut, tags=["service"],
             responses={503: {"model": HealthOut, "description": "no model loaded"}})
    def healthz():
        """Liveness and readiness: 200 while at least one model is loaded."""
        n = len(service.store.models)
        body = {"status": "ok" if n else "no_models", "models": n, "queue": service.pool.stats()}
        return JSONResponse(body, status_code=200 if n else 503)

    @app.get("/v1/models", response_model=ModelsOut, tags=["models"])
    def list_models():
        """The loaded models (by name, for the `model` field) and the tasks they serve."""
        defaults = {service.store.default(t) for t in service.store.tasks()}
        return {"tasks": service.store.tasks(),
                "models": [{**m.summary(), "default": m.name in defaults} for m in service.store.models.values()]}

    @app.get("/metrics", tags=["service"], responses={
        200: {"description": "JSON by default; Prometheus text with format=prometheus",
              "content": {"application/json": {}, "text/plain": {"schema": {"type": "string"}}}},
        422: {"model": ErrorBody}})
    def metrics(format: Literal["json", "prometheus"] = Query("json")):
        """Request counts by status and latency quantiles (p50/p95/p99) per endpoint, in-process."""
        if format == "prometheus":
            stats = service.pool.stats()
            return PlainTextResponse(service.metrics.prometheus({
                "prism_queue_pending": stats["pending"], "prism_models_loaded": len(service.store.models)}))
        return {**service.metrics.snapshot(), "queue": service.pool.stats(), "jobs": service.jobs.stats()}

    for adapter in service.served_tasks().values():
        _add_task_route(app, service, adapter)
    if any(a.job for a in service.served_tasks().values()):
        add_job_routes(app, service.jobs)


def _add_task_route(app: FastAPI, service: Service, adapter: TaskAdapter) -> None:
    cfg = service.config
    option_names = list(adapter.options.model_fields)
    known_fields = set(COMMON_FIELDS) | set(option_names) | set(adapter.extra_images)

    async def run_task(request: Request, **fields):
        files, model_name, fmt = fields.pop("image"), fields.pop("model"), fields.pop("format")
        extras = {n: f for n in adapter.extra_images if (f := fields.pop(n)) is not None}
        unknown = sorted(set((await request.form()).keys()) - known_fields)  # parsed already: cached
        if unknown:
            raise ServeError(422, "invalid_options", f"unknown field(s): {', '.join(unknown)}; "
                                                     f"known: {', '.join(sorted(known_fields))}")
        try:  # FastAPI checked each field; the model may also check them together (knowing the extras sent)
            options = adapter.options.model_validate(fields, context={"extra_images": set(extras)})
        except ValidationError as e:
            raise RequestValidationError(e.errors()) from None
        accept = request.headers.get("accept", "")
        fmt = fmt or _format_from_accept(accept)
        ups = [U.Upload(f.filename or f"image{i + 1}", await f.read()) for i, f in enumerate(files)]
        if adapter.job:
            extra_ups = {n: U.Upload(f.filename or n, await f.read()) for n, f in extras.items()}
            return accepted(service.submit_job(adapter, model_name, ups, options, fmt, extra_ups), service.jobs)
        model, results = await service.run(adapter, model_name, ups, options, fmt)
        if len(results) > 1 or _prefers_json(accept):
            return JSONResponse({"task": adapter.name, "model": model.name, "images": [
                {"filename": r.name, "media_type": r.media_type, "width": r.width, "height": r.height,
                 "data": U.to_base64(r.data)} for r in results]})
        r = results[0]
        return Response(r.data, media_type=r.media_type, headers={
            "Content-Disposition": f'inline; filename="{r.name}"', "X-Prism-Model": quote(model.name, safe="")})

    params = [
        inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Request),
        _form_param("image", Annotated[list[UploadFile], File(
            description=f"One or more images (png, jpeg, webp, bmp, tiff); at most {cfg.max_images} per "
                        f"request, {cfg.max_pixels:,} pixels each, {cfg.max_upload_bytes:,} bytes in all.")]),
        _form_param("model", Annotated[Optional[str], Form(
            description=f"A model name from GET /v1/models; default: {service.store.default(adapter.model_task)}.")], None),
        _form_param("format", Annotated[Optional[Literal["png", "jpeg"]], Form(
            description="Output format; default: from the Accept header (image/jpeg), else png.")], None),
    ]
    for name, info in adapter.options.model_fields.items():
        params.append(_form_param(name, Annotated[info.annotation, Form(
            description=info.description, **_constraints(info))], info.default))
    for name, about in adapter.extra_images.items():
        params.append(_form_param(name, Annotated[Optional[UploadFile], File(description=about)], None))
    run_task.__signature__ = inspect.Signature(params)
    run_task.__name__ = f"run_{adapter.name}"

    if adapter.job:
        answer = ("Runs as a job: the answer is 202 with the job at once; poll `GET /v1/jobs/{id}` for "
                  "progress and the result.")
        success = SUBMIT_RESPONSES
    else:
        answer = ("One image: the image itself (PNG or JPEG, by `format` or the `Accept` header). Several "
                  "images, or `Accept: application/json`: JSON with base64 images.")
        success = {200: {"model": ImagesOut, "content": {m: {"schema": {"type": "string", "format": "binary"}}
                                                         for m in U.MEDIA_TYPES.values()}}}
    app.post(
        f"/v1/{adapter.name}", tags=[adapter.name], summary=adapter.title,
        description=f"{adapter.description}\n\n{answer}", status_code=202 if adapter.job else 200,
        max_body_size=cfg.max_upload_bytes,
        form_limits={"max_fields": 64, "max_part_size": 64 * 1024},
        responses={
            **success,
            400: {"model": ErrorBody, "description": "malformed multipart body"},
            404: {"model": ErrorBody, "description": "unknown model name"},
            413: {"model": ErrorBody, "description": "too many bytes, images or pixels"},
            415: {"model": ErrorBody, "description": "not an image in a supported format"},
            422: {"model": ErrorBody, "description": "bad options"},
            503: {"model": ErrorBody, "description": "queue full; see Retry-After",
                  "headers": {"Retry-After": {"schema": {"type": "integer"}}}},
        })(run_task)


class DeclaredSizeGate:
    """Refuse an API request whose declared Content-Length is over the limit with our JSON 413,
    before anything is read. (The route's own limit still counts streamed bodies, which arrive
    without a length; Starlette answers a declared oversize with plain text, hence this gate.)"""

    def __init__(self, app, max_bytes: int, prefix: str = "/v1/"):
        self.app, self.max_bytes, self.prefix = app, max_bytes, prefix

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["path"].startswith(self.prefix):
            length = dict(scope["headers"]).get(b"content-length", b"")
            if length.isdigit() and int(length) > self.max_bytes:
                body = error_body(413, "too_large", f"request body too large; the limit is {self.max_bytes:,} bytes")
                return await JSONResponse(body, 413, headers={"Connection": "close"})(scope, receive, send)
        await self.app(scope, receive, send)


def _form_param(name, annotation, default=inspect.Parameter.empty) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=default)


def _constraints(info) -> dict:
    """Bounds of a pydantic field (ge=0, le=2, ...) as keyword arguments for Form()."""
    keys = ("gt", "ge", "lt", "le", "min_length", "max_length", "pattern", "allow_inf_nan")
    return {k: getattr(m, k) for m in info.metadata for k in keys if getattr(m, k, None) is not None}


def _accepted(accept: str) -> list[tuple[float, str]]:
    out = []
    for part in accept.split(","):
        media, _, params = part.strip().partition(";")
        q = 1.0
        for p in params.split(";"):
            key, _, value = p.strip().partition("=")
            if key == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if media:
            out.append((q, media.strip().lower()))
    return sorted(out, key=lambda x: -x[0])


def _prefers_json(accept: str) -> bool:
    for q, media in _accepted(accept):
        if media == "application/json":
            return q > 0
        if media.startswith("image/") or media == "*/*":
            return False
    return False


def _format_from_accept(accept: str) -> str:
    for q, media in _accepted(accept):
        if media in ("image/jpeg", "image/png") and q > 0:
            return "jpeg" if media == "image/jpeg" else "png"
    return "png"


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServeError)
    async def serve_error(request: Request, exc: ServeError):
        return JSONResponse(error_body(exc.status, exc.code, exc.message), exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        # only where and what: pydantic's "input" could echo a whole upload back
        details = [{"loc": [str(x) if not isinstance(x, int) else x for x in e.get("loc", ())],
                    "msg": e.get("msg", ""), "type": e.get("type", "")} for e in exc.errors()]
        message = "; ".join(f"{'.'.join(map(str, d['loc'][1:])) or 'request'}: {d['msg']}" for d in details)
        return JSONResponse(error_body(422, "invalid_options", message, details), 422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        code = HTTP_CODES.get(exc.status_code, "error")
        message = exc.detail if isinstance(exc.detail, str) else code
        if exc.status_code == 413:
            message = f"request body too large; the limit is {app.state.service.config.max_upload_bytes:,} bytes"
        return JSONResponse(error_body(exc.status_code, code, message), exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception):
        log.exception("internal error on %s %s", request.method, request.url.path)
        return JSONResponse(error_body(500, "internal", "internal server error"), 500)
