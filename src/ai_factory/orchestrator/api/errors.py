"""One place that maps errors to HTTP answers: always JSON ``{"error": "..."}``."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ai_factory.core.errors import HTTP_STATUS, FactoryError, TooManyAttemptsError

log = logging.getLogger(__name__)



def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def describe_validation(exc: RequestValidationError) -> str:
    parts = []
    for error in exc.errors():
        loc = [str(p) for p in error.get("loc", ()) if p not in ("body", "query", "path")]
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        if error.get("type") == "json_invalid":
            message = "request body is not valid JSON"
        parts.append(f"{'.'.join(loc)}: {message}" if loc else message)
    return "; ".join(parts) or "invalid request"


def describe_unparsable(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "request body is nested too deeply"
    return "request body is not valid JSON"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(FactoryError)
    async def _factory_error(request: Request, exc: FactoryError) -> JSONResponse:
        for cls, status in HTTP_STATUS.items():
            if isinstance(exc, cls):
                headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
                if isinstance(exc, TooManyAttemptsError):
                    headers = {"Retry-After": str(exc.retry_after_s)}
                if status == 503:
                    log.error("api.store_error path=%s error=%s", request.url.path, exc)
                return error_response(status, str(exc), headers)
        log.exception("api.unmapped_error path=%s", request.url.path)
        return error_response(500, "internal error")

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(422, describe_validation(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and isinstance(exc.__cause__, (RecursionError, ValueError)):
            # FastAPI could not parse a JSON body (nested deeper than the parser goes, or not
            # UTF-8): invalid input like any other bad JSON, so 422 as for a syntax error.
            return error_response(422, describe_unparsable(exc.__cause__))
        return error_response(exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("api.internal_error path=%s", request.url.path)
        return error_response(500, "internal error")
