"""The dashboard's actions (POST forms) and its login.

Every action needs the session's CSRF token (`CheckedForm`) and then calls the same
service the API route calls. Success redirects (303) to the page that shows the
result; a refusal (wrong state, invalid input) renders that page again with the
reason, so nothing is lost and nothing happens twice on reload.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from ai_factory.core.errors import FactoryError, NotFoundError, TooManyAttemptsError
from ai_factory.core.ids import parse_id
from ai_factory.core.models import CreateWorkItemInput, Priority, UpdateLearningInput
from ai_factory.dashboard.pages import not_found, render_item, render_submit_form
from ai_factory.dashboard.web import CheckedForm, DashboardDep, safe_next
from ai_factory.orchestrator.api.auth_throttle import Secret
from ai_factory.orchestrator.api.deps import auth_throttle, client_address
from ai_factory.orchestrator.api.session import SESSION_COOKIE, token_matches

log = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)

KILL_REASON = "killed from the dashboard"


def _field(form: CheckedForm, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _see(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


@router.post("/work")
async def submit(request: Request, dashboard: DashboardDep, form: CheckedForm) -> Response:
    values = {k: _field(form, k) for k in ("repo", "base_branch", "priority")}
    values["spec"] = form.get("spec") if isinstance(form.get("spec"), str) else ""  # type: ignore[assignment]
    try:
        body = CreateWorkItemInput(
            repo=values["repo"],
            base_branch=values["base_branch"] or "main",
            priority=values["priority"] or "medium",
            spec=values["spec"].replace("\r\n", "\n"),
        )
    except ValidationError as exc:
        errors = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        return await render_submit_form(
            request, dashboard, values=values, errors=errors, status_code=422
        )
    item, _ = await dashboard.services.queue.add(body)
    return _see(f"/work/{item.id}")


async def _item_action(request: Request, dashboard: DashboardDep, item_id: str, action) -> Response:
    try:
        await action()
    except NotFoundError:
        return not_found(request, dashboard, f"There is no work item {item_id}.")
    except FactoryError as exc:
        return await render_item(request, dashboard, item_id, error=str(exc), status_code=409)
    return _see(f"/work/{await dashboard.services.ledger.item_id(item_id)}")


@router.post("/work/{item_id}/cancel")
async def cancel(
    request: Request, item_id: str, dashboard: DashboardDep, form: CheckedForm
) -> Response:
    queue = dashboard.services.queue
    return await _item_action(
        request,
        dashboard,
        item_id,
        lambda: queue.cancel(item_id, reason="cancelled from the dashboard"),
    )


@router.post("/work/{item_id}/retry")
async def retry(
    request: Request, item_id: str, dashboard: DashboardDep, form: CheckedForm
) -> Response:
    queue = dashboard.services.queue
    return await _item_action(
        request,
        dashboard,
        item_id,
        lambda: queue.retry(item_id, reason="retried from the dashboard"),
    )


@router.post("/work/{item_id}/priority")
async def reprioritise(
    request: Request, item_id: str, dashboard: DashboardDep, form: CheckedForm
) -> Response:
    queue = dashboard.services.queue
    try:
        priority = Priority(_field(form, "priority"))
    except ValueError:
        return await render_item(
            request, dashboard, item_id, error="Choose a priority.", status_code=422
        )
    return await _item_action(
        request, dashboard, item_id, lambda: queue.set_priority(item_id, priority)
    )


@router.post("/workers/{worker_id}/kill")
async def kill(
    request: Request, worker_id: str, dashboard: DashboardDep, form: CheckedForm
) -> Response:
    try:
        await dashboard.services.workers.kill(worker_id, reason=KILL_REASON)
    except NotFoundError:
        return not_found(request, dashboard, f"There is no worker {worker_id}.")
    except FactoryError as exc:
        return dashboard.render(
            request, "error.html", status_code=409, title="Cannot kill", message=str(exc)
        )
    log.info("dashboard.worker_killed worker=%s", worker_id)
    return _see(f"/workers/{await dashboard.services.ledger.worker_id(worker_id)}")


@router.post("/learnings/{learning_id}/delete")
async def delete_learning(
    request: Request, learning_id: str, dashboard: DashboardDep, form: CheckedForm
) -> Response:
    try:
        await dashboard.services.learnings.delete(parse_id(learning_id, "learning"))
    except NotFoundError:
        pass  # already gone: the list shows the truth either way
    back = safe_next(_field(form, "back"))
    return _see(back if back.startswith("/learnings") else "/learnings")


@router.post("/learnings/{learning_id}/edit")
async def edit_learning(
    request: Request, learning_id: str, dashboard: DashboardDep, form: CheckedForm
) -> Response:
    """New text for a learning (the form's `content`), or its obsolete mark (`obsolete`:
    1 marks it, 0 makes it current again)."""
    back = safe_next(_field(form, "back"))
    try:
        change = UpdateLearningInput(
            content=_field(form, "content") or None,
            obsolete={"1": True, "0": False}.get(_field(form, "obsolete")),
        )
        await dashboard.services.learnings.edit(parse_id(learning_id, "learning"), change)
    except ValidationError:
        return dashboard.render(
            request, "error.html", status_code=422, title="Cannot save",
            message="A learning is 1 to 4096 characters of text.",
        )
    except NotFoundError:
        return not_found(request, dashboard, f"There is no learning {learning_id}.")
    except FactoryError as exc:
        return dashboard.render(
            request, "error.html", status_code=409, title="Cannot save", message=str(exc)
        )
    log.info("dashboard.learning_edited learning=%s", learning_id)
    return _see(back if back.startswith("/learnings") else "/learnings")


# --- login ---


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request, dashboard: DashboardDep, next: str = "/") -> Response:
    if not dashboard.protected or dashboard.session_of(request) is not None:
        return _see(safe_next(next))
    return dashboard.render(request, "login.html", next=safe_next(next), error=None)


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request, dashboard: DashboardDep) -> Response:
    form = await request.form()
    token = form.get("token")
    next_url = safe_next(form.get("next") if isinstance(form.get("next"), str) else "/")  # type: ignore[arg-type]
    expected = dashboard.services.settings.api_token
    if expected is None:
        return _see(next_url)
    throttle, address = auth_throttle(request), client_address(request)
    try:
        throttle.check(address, Secret.API_TOKEN)
    except TooManyAttemptsError as exc:
        log.warning("dashboard.login_throttled")
        response = dashboard.render(
            request, "login.html", status_code=429, next=next_url, error=f"{exc}.".capitalize()
        )
        response.headers["Retry-After"] = str(exc.retry_after_s)
        return response
    if not isinstance(token, str) or not token_matches(token.strip(), expected):
        log.warning("dashboard.login_refused")
        if isinstance(token, str) and token.strip():
            throttle.record_failure(address, Secret.API_TOKEN)
        return dashboard.render(
            request,
            "login.html",
            status_code=401,
            next=next_url,
            error="That is not the factory's API token.",
        )
    cookie, _ = dashboard.sessions.issue()
    response = _see(next_url)
    dashboard.set_cookie(request, response, cookie)
    log.info("dashboard.login")
    return response


@router.post("/logout")
async def logout(request: Request, dashboard: DashboardDep, form: CheckedForm) -> Response:
    response = _see("/login" if dashboard.protected else "/")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
