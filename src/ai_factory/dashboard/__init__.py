"""The dashboard: server-rendered pages served by the orchestrator app at ``/``.

Pages (`pages`): overview, workers and a worker with its live log, the queue and an
item with its spec, learnings, metrics (``/stats``; ``/metrics`` is Prometheus').
Actions (`actions`) are plain forms with a CSRF token; live updates (`live`) come
over Server-Sent Events from the factory's event hub. Templates and static files
ship in the package: nothing is loaded from another site.

`install(app, services)` adds it all to the orchestrator's FastAPI app.
"""

from __future__ import annotations

from importlib import resources

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from ai_factory.dashboard import actions, live, pages
from ai_factory.dashboard.web import Dashboard, Forbidden, LoginRequired, login_url
from ai_factory.orchestrator.services import Services

STATIC_PATH = "/static"


def install(app: FastAPI, services: Services) -> None:
    dashboard = Dashboard.build(services)
    app.state.dashboard = dashboard
    for router in (pages.router, actions.router, live.router):
        app.include_router(router)
    static = resources.files(__package__).joinpath("static")
    app.mount(STATIC_PATH, StaticFiles(directory=str(static)), name="dashboard-static")

    @app.exception_handler(LoginRequired)
    async def _login(request: Request, exc: LoginRequired) -> RedirectResponse:
        return RedirectResponse(login_url(exc.next_url), status_code=303)

    @app.exception_handler(Forbidden)
    async def _forbidden(request: Request, exc: Forbidden) -> HTMLResponse:
        return dashboard.render(
            request,
            "error.html",
            status_code=403,
            title="Refused",
            message=(
                "This action did not come with this dashboard's form token: it was sent from another "
                "site, or your session ended. Reload the page (and sign in) and try again."
            ),
        )
