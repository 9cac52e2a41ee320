"""The orchestrator's FastAPI application: routes, error mapping, body limit, origin check."""

from __future__ import annotations

from fastapi import FastAPI

from ai_factory import __version__, dashboard
from ai_factory.intake import api as intake_api
from ai_factory.orchestrator.api import learnings, status, work, workers
from ai_factory.orchestrator.api import logs as worker_logs
from ai_factory.orchestrator.api.auth_throttle import AuthThrottle
from ai_factory.orchestrator.api.body_size import BodySizeLimit
from ai_factory.orchestrator.api.errors import install_error_handlers
from ai_factory.orchestrator.api.origin import CrossSiteGuard
from ai_factory.orchestrator.services import Services


def create_app(services: Services) -> FastAPI:
    app = FastAPI(
        title="AI Factory",
        version=__version__,
        description="Turns GitHub issues into pull requests with Claude Code.",
        openapi_url="/openapi.json",
    )
    app.state.services = services
    app.state.auth_throttle = AuthThrottle(
        max_failures=services.settings.auth_failure_limit,
        window_s=services.settings.auth_failure_window_seconds,
    )
    install_error_handlers(app)
    for router in (work.router, workers.router, workers.admin, status.router, status.health, learnings.router):
        app.include_router(router)
    app.include_router(worker_logs.router)
    dashboard.install(app, services)  # pages at /, live updates at /live, assets at /static
    intake_api.install(app, services.settings)  # GitHub webhook, when intake is configured
    app.add_middleware(BodySizeLimit)
    app.add_middleware(CrossSiteGuard)
    return app
