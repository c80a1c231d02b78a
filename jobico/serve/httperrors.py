"""Errors as the listener answers them: one JSON shape, its status from `errors.HTTP_STATUS`,
a plain message for a 5xx (the details go to the log), Retry-After where waiting helps; and the
handlers that give FastAPI's and Starlette's own errors the same shape."""

from __future__ import annotations

import http
import logging
import math

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from jobico.errors import HTTP_STATUS, InvalidInput, JobicoError, QueueFull, RateLimited, lookup

log = logging.getLogger(__name__)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(JobicoError, _jobico_error)
    app.add_exception_handler(RequestValidationError, _request_invalid)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)


def error_response(error: JobicoError) -> JSONResponse:
    """The one error shape; the status comes from the error's class. A 5xx answers its code
    and a plain message only, its own message and details going to the log: they are about
    Jobico's insides (actors, exceptions, repositories), not about the request."""
    status = lookup(HTTP_STATUS, error)
    headers = {}
    if isinstance(error, QueueFull | RateLimited):
        headers["Retry-After"] = _retry_after(error.details.get("retry_after"))
    if status < 500:
        body = {"error": jsonable_encoder(error.to_dict())}
    else:
        plain = _PLAIN.get(status, _PLAIN[500])
        if error.message != plain:
            log.warning("answered %d %s: %s %s", status, error.code, error.message, error.details)
        body = {"error": {"code": error.code, "message": plain}}
    return JSONResponse(body, status_code=status, headers=headers)


_PLAIN = {
    500: "internal error",
    503: "Jobico cannot reach a component it needs right now; try again later",
}


def _retry_after(seconds: object) -> str:
    """Whole seconds, at least 1: the header takes no fractions, and 0 would invite a stampede."""
    if isinstance(seconds, int | float) and math.isfinite(seconds) and seconds > 0:
        return str(math.ceil(seconds))
    return "1"


async def _jobico_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, JobicoError)
    return error_response(exc)


async def _request_invalid(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = jsonable_encoder(exc.errors())
    return error_response(InvalidInput("the request is invalid", errors=errors))


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    """Starlette's own answers (no such path, method not allowed) in the one error shape."""
    assert isinstance(exc, StarletteHTTPException)
    code = _phrase_code(exc.status_code)
    body = {"error": {"code": code, "message": str(exc.detail)}}
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)


def _phrase_code(status: int) -> str:
    for cls, cls_status in HTTP_STATUS.items():
        if cls_status == status and cls is not JobicoError:
            return cls.code
    try:
        return http.HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")
    except ValueError:
        return f"http_{status}"


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(JobicoError("internal error"))
