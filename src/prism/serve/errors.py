"""The service's one error type and its JSON body, shared by the REST API and the web app."""
from __future__ import annotations

from pydantic import BaseModel, Field


class ServeError(Exception):
    """An error meant for the client: HTTP status, a short code and a human message."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


class QueueFull(ServeError):
    def __init__(self, retry_after: int):
        super().__init__(503, "busy", f"the inference queue is full; retry in {retry_after} s",
                         {"Retry-After": str(retry_after)})


class ErrorDetail(BaseModel):
    loc: list[str | int] = Field(description="where the bad value is, e.g. ['body', 'saturation']")
    msg: str
    type: str


class ErrorBody(BaseModel):
    """Every error response: `{"error": code, "message": text, "status": N}`."""
    error: str = Field(description="short machine-readable code, e.g. 'too_large', 'not_an_image'")
    message: str = Field(description="what went wrong, for a person")
    status: int
    details: list[ErrorDetail] | None = Field(None, description="per-field problems (422 only)")


def error_body(status: int, code: str, message: str, details: list[dict] | None = None) -> dict:
    body = {"error": code, "message": message, "status": status}
    if details is not None:
        body["details"] = details
    return body
