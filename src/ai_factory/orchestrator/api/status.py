"""Status, metrics and health routes."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

from ai_factory.core.errors import StoreError
from ai_factory.core.models import FactoryMetrics, QueueStats, WireModel, WorkerMetrics, WorkerStats
from ai_factory.orchestrator import prometheus
from ai_factory.orchestrator.api.deps import AdminDep, ServicesDep, require_admin
from ai_factory.orchestrator.api.responses import ADMIN, errors
from ai_factory.orchestrator.spawn_limits import RateLimitStatus

router = APIRouter(prefix="/api", tags=["status"], dependencies=[AdminDep], responses=ADMIN)
health = APIRouter(tags=["status"])


class FactoryStatus(WireModel):
    queue: QueueStats
    workers: WorkerStats
    rate_limits: RateLimitStatus
    metrics: FactoryMetrics


class MetricsReport(FactoryMetrics):
    recent: list[WorkerMetrics]


class Health(WireModel):
    status: str
    database: str
    version: str


@router.get("/status", response_model=FactoryStatus)
async def status(services: ServicesDep) -> FactoryStatus:
    return FactoryStatus(
        queue=await services.queue.stats(),
        workers=await services.workers.stats(),
        rate_limits=await services.rate_limiter.status(),
        metrics=await services.metrics.summary(),
    )


@router.get("/metrics", response_model=MetricsReport)
async def metrics(services: ServicesDep) -> MetricsReport:
    summary = await services.metrics.summary()
    return MetricsReport(**summary.model_dump(), recent=await services.metrics.recent())


@health.get(
    "/healthz",
    response_model=Health,
    responses={503: {"model": Health, "description": "The database cannot be reached."}},
)
async def healthz(services: ServicesDep) -> Health | JSONResponse:
    """Whether the factory can serve: its database answers (within a couple of seconds)."""
    from ai_factory import __version__

    try:
        await services.db.fetch_one("SELECT 1")
    except StoreError as exc:
        down = Health(status="unavailable", database=str(exc), version=__version__)
        return JSONResponse(down.to_wire(), status_code=503)
    return Health(status="ok", database="ok", version=__version__)


@health.get(
    "/metrics",
    dependencies=[Depends(require_admin)],
    response_class=Response,
    responses=errors(401, 429, 503),
)
async def prometheus_metrics(services: ServicesDep) -> Response:
    """Prometheus text format (needs the API token when one is set)."""
    body = prometheus.render(
        await services.queue.stats(),
        await services.workers.stats(),
        await services.rate_limiter.status(),
        await services.metrics.summary(),
    )
    return Response(content=body, media_type=CONTENT_TYPE_LATEST)
