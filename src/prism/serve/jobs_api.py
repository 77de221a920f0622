"""The REST side of jobs (jobs.py). These routes exist only when a job task has a model loaded:

- `POST /v1/{task}` of a job task answers 202 with the job, and its URL in `Location` (api.py).
- `GET /v1/jobs/{id}` gives the status, the progress, and the result or the error.
- `GET /v1/jobs/{id}/files/{name}` gives one result file (an image, the projected w as .npy, ...).
- `DELETE /v1/jobs/{id}` cancels an unfinished job, or forgets a finished one.

(No `from __future__ import annotations` here: FastAPI reads the annotations at runtime.)
"""
from typing import Literal, Optional
from urllib.parse import quote

from fastapi import FastAPI, Path, Query
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from prism.serve import uploads as U
from prism.serve.errors import ErrorBody, ServeError
from prism.serve.jobs import Job, JobStore

JOB_ID = Path(max_length=64, description="The job id from the POST's answer.")


class JobProgressOut(BaseModel):
    step: int = Field(description="steps done so far, over all of the job's images")
    total: int
    loss: Optional[float] = Field(None, description="the task's current loss, when it has one")
    stage: Optional[str] = Field(None, description="what is being worked on, e.g. the image's name")


class JobFileOut(BaseModel):
    filename: str
    media_type: str
    bytes: int
    url: str = Field(description="GET it to download the file")


class JobImageOut(JobFileOut):
    width: int
    height: int
    data: Optional[str] = Field(None, description="the encoded image, base64; only with ?embed=true")


class JobResultOut(BaseModel):
    images: list[JobImageOut] = Field(description="the task's images, one per upload")
    files: list[JobFileOut] = Field(description="every download, the images included (e.g. a latent as .npy)")


class JobOut(BaseModel):
    id: str
    task: str
    model: str
    status: Literal["queued", "running", "done", "failed", "cancelled"]
    status_url: str = Field(description="poll this (GET) for progress and the result; DELETE it to cancel")
    created: float = Field(description="Unix time")
    started: Optional[float] = None
    finished: Optional[float] = None
    expires: Optional[float] = Field(None, description="Unix time after which a finished job is forgotten")
    cancel_requested: bool
    progress: Optional[JobProgressOut] = None
    error: Optional[ErrorBody] = Field(None, description="why the job failed: the API's error body")
    result: Optional[JobResultOut] = Field(None, description="when done")


def job_url(job: Job) -> str:
    return f"/v1/jobs/{job.id}"


def job_json(job: Job, store: JobStore, embed: bool = False) -> dict:
    """A job as the API shows it (JobOut). Read without the store's lock: each field is replaced
    whole by the worker, so a reader sees the old or the new value, never half of one."""
    body = {"id": job.id, "task": job.task, "model": job.model, "status": job.status, "status_url": job_url(job),
            "created": job.created, "started": job.started, "finished": job.finished,
            "expires": store.expires_at(job), "cancel_requested": job.cancel_requested.is_set(),
            "progress": job.progress, "error": job.error, "result": None}
    if job.status == "done":
        files = [{"filename": f.name, "media_type": f.media_type, "bytes": len(f.data),
                  "url": f"{job_url(job)}/files/{quote(f.name)}"} for f in job.files.values()]
        by_name = {f["filename"]: f for f in files}
        images = [{**by_name[r.name], "width": r.width, "height": r.height,
                   "data": U.to_base64(r.data) if embed else None} for r in job.images]
        body["result"] = {"images": images, "files": files}
    return body


def accepted(job: Job, store: JobStore) -> JSONResponse:
    """The POST's answer: 202, the job, and where to poll it."""
    return JSONResponse(job_json(job, store), 202, headers={"Location": job_url(job)})


SUBMIT_RESPONSES = {202: {"model": JobOut, "description": "the job was queued; poll its status_url",
                          "headers": {"Location": {"schema": {"type": "string"}}}}}


def add_job_routes(app: FastAPI, store: JobStore) -> None:
    not_found = {404: {"model": ErrorBody, "description": "no such job, or it expired"}}

    def find(job_id: str) -> Job:
        job = store.get(job_id)
        if job is None:
            raise ServeError(404, "job_not_found", f"job {job_id[:64]!r} not found: it never existed, was deleted, "
                                                   f"or expired (a job is kept {store.ttl_s:g} s after it ends)")
        return job

    @app.get("/v1/jobs/{job_id}", response_model=JobOut, tags=["jobs"], responses=not_found)
    def get_job(job_id: str = JOB_ID, embed: bool = Query(False, description="also give the images as base64")):
        """A job's status, its progress while it runs, and its result (or error) once it ends."""
        return JSONResponse(job_json(find(job_id), store, embed))

    @app.get("/v1/jobs/{job_id}/files/{filename}", tags=["jobs"], responses={
        200: {"description": "the file", "content": {m: {"schema": {"type": "string", "format": "binary"}}
                                                     for m in ("image/png", "image/jpeg", "application/octet-stream")}},
        **not_found})
    def get_job_file(job_id: str = JOB_ID, filename: str = Path(max_length=200)):
        """One file of a finished job's result, by the name its status lists."""
        job = find(job_id)
        file = job.files.get(filename)
        if file is None:
            raise ServeError(404, "file_not_found", f"job {job.id} has no file {filename[:200]!r}; "
                                                    f"its files: {', '.join(job.files) or '(none yet)'}")
        return Response(file.data, media_type=file.media_type,
                        headers={"Content-Disposition": f'attachment; filename="{file.name}"'})

    @app.delete("/v1/jobs/{job_id}", response_model=JobOut, tags=["jobs"], responses=not_found)
    def cancel_job(job_id: str = JOB_ID):
        """Cancel a job: a queued one at once, a running one at its next step (it reads "running"
        with cancel_requested until then). A finished job is forgotten, its files with it."""
        job = store.cancel(job_id)
        if job is None:
            find(job_id)  # raises the 404
        return JSONResponse(job_json(job, store))
