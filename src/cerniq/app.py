"""The FastAPI application: error rendering, request ids, metrics and every feature's router.

Routers are discovered: any module ``cerniq.<feature>.endpoints*`` exposing ``router`` is
included, so a feature package plugs in without touching this file.
"""

from __future__ import annotations

import importlib
import pkgutil
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import structlog
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import InterfaceError as DBAPIInterfaceError
from starlette.exceptions import HTTPException as StarletteHTTPException

import cerniq
from cerniq.config import Settings, get_settings
from cerniq.errors import CerniqError
from cerniq.kit.db import dispose_engines
from cerniq.kit.metrics import refresh_all as refresh_metrics
from cerniq.kit.redis import close_redis
from cerniq.logging import configure_logging, get_logger
from cerniq.worker.queues import close_queues

_STATUS_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: "VALIDATION_ERROR",
    429: "RATE_LIMITED",
}


def error_body(code: str, message: str, details: Any = None, request_id: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"error": {"code": code, "message": message, "details": details}}
    if request_id:
        body["requestId"] = request_id
    return body


def discover_routers() -> list[APIRouter]:
    """Every ``router`` of the modules named ``endpoints*`` in the feature packages."""
    routers: list[APIRouter] = []
    for package in pkgutil.iter_modules(cerniq.__path__):
        if not package.ispkg:
            continue
        try:
            pkg = importlib.import_module(f"cerniq.{package.name}")
        except ModuleNotFoundError:
            continue
        for module in pkgutil.iter_modules(pkg.__path__):
            if not module.name.startswith("endpoints"):
                continue
            mod = importlib.import_module(f"cerniq.{package.name}.{module.name}")
            router = getattr(mod, "router", None)
            if isinstance(router, APIRouter):
                routers.append(router)
    return routers


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings)
    log = get_logger("cerniq.api")

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        log.info("api.started", port=settings.api_port, local_operator_mode=settings.local_operator_mode)
        yield
        await close_queues()
        await close_redis()
        await dispose_engines()

    app = FastAPI(
        title="Cerniq Outreach",
        version=cerniq.__version__,
        description=(
            "B2B outreach over WhatsApp (TimelinesAI), cold email (Instantly) and warm email "
            "(Resend) with reply triage and human review. Errors are "
            '`{"error": {"code", "message", "details"}}`.'
        ),
        lifespan=lifespan,
    )

    @app.middleware("http")
    async def request_context(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
        request.state.request_id = request_id
        with structlog.contextvars.bound_contextvars(request_id=request_id):
            response = await call_next(request)
        response.headers["X-Request-ID"] = request_id
        return response

    @app.exception_handler(CerniqError)
    async def cerniq_error(request: Request, exc: CerniqError) -> JSONResponse:
        return JSONResponse(
            error_body(exc.error_code, exc.message, exc.details, getattr(request.state, "request_id", None)),
            status_code=exc.status_code,
        )

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = [
            {"field": ".".join(str(p) for p in err.get("loc", ()) if p != "body"), "message": err.get("msg")}
            for err in exc.errors()
        ]
        return JSONResponse(
            error_body("VALIDATION_ERROR", "the request is not valid", details, request.state.request_id),
            status_code=400,
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _STATUS_CODES.get(exc.status_code, "ERROR")
        return JSONResponse(
            error_body(code, str(exc.detail), None, getattr(request.state, "request_id", None)),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    async def store_down(request: Request, exc: Exception) -> JSONResponse:
        # Redis (or PostgreSQL) cannot be reached: the request was fine, the service is not
        store = "Redis" if isinstance(exc, RedisConnectionError | RedisTimeoutError) else "the database"
        log.warning("api.store_unreachable", path=request.url.path, store=store, error=str(exc)[:200])
        return JSONResponse(
            error_body(
                "SERVICE_UNAVAILABLE",
                f"{store} cannot be reached; try again in a moment",
                None,
                getattr(request.state, "request_id", None),
            ),
            status_code=503,
            headers={"Retry-After": "10"},
        )

    for unreachable in (RedisConnectionError, RedisTimeoutError, ConnectionRefusedError, DBAPIInterfaceError):
        app.add_exception_handler(unreachable, store_down)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("api.unhandled", path=request.url.path)
        return JSONResponse(
            error_body(
                "INTERNAL_ERROR",
                "unexpected error; see the server log",
                None,
                getattr(request.state, "request_id", None),
            ),
            status_code=500,
        )

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        await refresh_metrics()
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    for router in discover_routers():
        app.include_router(router)
    return app
