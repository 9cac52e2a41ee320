"""The dashboard's request plumbing: templates, the session on each request, CSRF checks.

`Dashboard` is built once per app (`install`) and holds the template environment,
the markdown renderer, the read store and the session codec. Page handlers get it
with `DashboardDep` and the request's session with `PageSession` (which sends a
visitor without one to the login page when FACTORY_API_TOKEN is set, and issues an
anonymous session when it is not). Actions depend on `CheckedForm`: the posted
form, accepted only with the session's CSRF token (403 otherwise).
"""

from __future__ import annotations

import logging
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.datastructures import FormData

from ai_factory.dashboard import formatting
from ai_factory.dashboard.markdown import MarkdownRenderer
from ai_factory.dashboard.store import DashboardStore
from ai_factory.orchestrator.api.session import (
    CSRF_FIELD,
    CSRF_HEADER,
    SESSION_COOKIE,
    Session,
    SessionCodec,
)
from ai_factory.orchestrator.services import Services

log = logging.getLogger(__name__)

LIVE_REFRESH_HEADER = "X-Dashboard-Refresh"  # sent by dashboard.js when it re-fetches a page

# No inline script or style anywhere: a spec that slipped through escaping still could not run.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'"
)


class LoginRequired(Exception):
    """A page visit without a valid session while FACTORY_API_TOKEN is set."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


class Forbidden(Exception):
    """An action without a valid session or CSRF token."""


class Dashboard:
    def __init__(
        self, *, services: Services, sessions: SessionCodec, store: DashboardStore
    ) -> None:
        self.services = services
        self.sessions = sessions
        self.store = store
        self.markdown = MarkdownRenderer()
        self.env = Environment(
            loader=PackageLoader("ai_factory.dashboard", "templates"),
            autoescape=select_autoescape(default=True, default_for_string=True),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        tz = services.clock.tz
        self.env.filters.update(
            age=formatting.age,
            tokens=formatting.tokens,
            usd=formatting.usd,
            clock=lambda value: formatting.clock_time(value, tz),
            window=formatting.window_name,
            markdown=self.markdown.render,
        )
        # A live worker shows as silent once it has missed three heartbeats, or sooner if
        # the orchestrator would already give it up (a timeout under three intervals).
        settings = services.settings
        self.env.globals.update(
            percent=formatting.percent,
            silent_after_s=min(
                settings.heartbeat_interval_seconds * 3, settings.heartbeat_timeout_seconds
            ),
        )

    @classmethod
    def build(cls, services: Services) -> Dashboard:
        token = services.settings.api_token
        sessions = SessionCodec.for_token(token) if token else SessionCodec.ephemeral()
        return cls(services=services, sessions=sessions, store=DashboardStore(db=services.db))

    @property
    def protected(self) -> bool:
        return self.services.settings.api_token is not None

    def session_of(self, request: Request) -> Session | None:
        return self.sessions.read(request.cookies.get(SESSION_COOKIE))

    def render(
        self, request: Request, template: str, *, status_code: int = 200, **context: Any
    ) -> HTMLResponse:
        session: Session | None = getattr(request.state, "dashboard_session", None)
        context.setdefault("page", template.removesuffix(".html"))
        if "page_url" not in context and request.method == "GET":
            query = request.url.query
            context["page_url"] = request.url.path + (f"?{query}" if query else "")
        html = self.env.get_template(template).render(
            request=request,
            csrf_token=session.csrf_token if session else "",
            csrf_field=CSRF_FIELD,
            protected=self.protected,
            logged_in=session is not None and self.protected,
            **context,
        )
        response = HTMLResponse(html, status_code=status_code)
        self.secure(response)
        cookie = getattr(request.state, "dashboard_new_cookie", None)
        if cookie:
            self.set_cookie(request, response, cookie)
        return response

    def set_cookie(self, request: Request, response: Any, value: str) -> None:
        response.set_cookie(
            SESSION_COOKIE,
            value,
            max_age=self.sessions.max_age_s,
            path="/",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )

    @staticmethod
    def secure(response: Any) -> None:
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["Cache-Control"] = "no-store"


def get_dashboard(request: Request) -> Dashboard:
    return request.app.state.dashboard


DashboardDep = Annotated[Dashboard, Depends(get_dashboard)]


async def page_session(request: Request, dashboard: DashboardDep) -> Session:
    """The visitor's session; a new anonymous one when the dashboard is open."""
    session = dashboard.session_of(request)
    if session is None:
        if dashboard.protected:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            raise LoginRequired(target)
        cookie, session = dashboard.sessions.issue()
        request.state.dashboard_new_cookie = cookie
    request.state.dashboard_session = session
    return session


async def checked_form(request: Request, dashboard: DashboardDep) -> FormData:
    """The posted form of an action, refused (403) without the session's CSRF token."""
    session = dashboard.session_of(request)
    form = await request.form()
    candidate = form.get(CSRF_FIELD)
    if not isinstance(candidate, str):
        candidate = request.headers.get(CSRF_HEADER)
    if session is None or not session.csrf_matches(candidate):
        log.warning(
            "dashboard.csrf_refused path=%s session=%s", request.url.path, session is not None
        )
        raise Forbidden()
    request.state.dashboard_session = session
    return form


PageSession = Annotated[Session, Depends(page_session)]
CheckedForm = Annotated[FormData, Depends(checked_form)]


def login_url(next_url: str) -> str:
    return "/login?next=" + quote(next_url, safe="/")


def safe_next(value: str | None) -> str:
    """Only a local path may follow a login (no open redirect to another site)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value
