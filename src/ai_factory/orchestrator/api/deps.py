"""Request dependencies: the services, the admin token, the calling worker.

Every check of a presented credential runs under the app's `AuthThrottle` (see
`auth_throttle`): refused unchecked while the client's address is blocked, and
counted against that address when wrong.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request

from ai_factory.core.errors import AuthError
from ai_factory.orchestrator.api.auth_throttle import AuthThrottle, Secret
from ai_factory.orchestrator.api.session import (
    CSRF_HEADER,
    SAFE_METHODS,
    SESSION_COOKIE,
    SessionCodec,
)
from ai_factory.orchestrator.ledger import WorkerRecord
from ai_factory.orchestrator.services import Services


def get_services(request: Request) -> Services:
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(get_services)]


def auth_throttle(request: Request) -> AuthThrottle:
    return request.app.state.auth_throttle


def client_address(request: Request) -> str:
    return request.client.host if request.client else ""


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def is_admin(request: Request, services: Services) -> bool:
    """The API token as a Bearer header, or a dashboard session cookie.

    The cookie (signed, see `ai_factory.orchestrator.api.session`) counts for safe methods
    only, unless the request also carries the session's CSRF token in X-CSRF-Token:
    a cross-site page can make the browser send the cookie but cannot read the token.
    """
    expected = services.settings.api_token
    if expected is None:
        return True
    candidate = bearer_token(request)
    if candidate and hmac.compare_digest(candidate.encode(), expected.encode()):
        return True
    session = SessionCodec.for_token(expected).read(request.cookies.get(SESSION_COOKIE))
    if session is None:
        return False
    return request.method in SAFE_METHODS or session.csrf_matches(request.headers.get(CSRF_HEADER))


async def require_admin(request: Request, services: ServicesDep) -> None:
    """Every /api route but the worker routes, when FACTORY_API_TOKEN is set."""
    if services.settings.api_token is None:
        return
    throttle, address = auth_throttle(request), client_address(request)
    throttle.check(address, Secret.API_TOKEN)
    if not is_admin(request, services):
        if bearer_token(request) is not None:  # a guess, not a client that sent nothing
            throttle.record_failure(address, Secret.API_TOKEN)
        raise AuthError("missing or invalid API token (Authorization: Bearer <FACTORY_API_TOKEN>)")


async def authenticate_worker(request: Request, services: Services, worker_id: str) -> WorkerRecord:
    """The worker `worker_id`, if the request carries its token (404 unknown, 401 wrong)."""
    throttle, address = auth_throttle(request), client_address(request)
    throttle.check(address, Secret.WORKER_TOKEN)
    try:
        return await services.workers.authenticate(worker_id, bearer_token(request))
    except AuthError:
        if bearer_token(request) is not None:
            throttle.record_failure(address, Secret.WORKER_TOKEN)
        raise


async def require_reader(request: Request, services: ServicesDep) -> None:
    """Admin, or a worker reading shared data (learnings) with its own token."""
    worker_id = request.headers.get("x-worker-id")
    if not worker_id or services.settings.api_token is None:
        await require_admin(request, services)
        return
    # The bearer may be either token: nothing is compared while either count is full, and
    # a bearer that is neither counts against both.
    throttle, address = auth_throttle(request), client_address(request)
    throttle.check(address, Secret.API_TOKEN)
    throttle.check(address, Secret.WORKER_TOKEN)
    if is_admin(request, services):
        return
    try:
        await authenticate_worker(request, services, worker_id)
    except AuthError:
        if bearer_token(request) is not None:
            throttle.record_failure(address, Secret.API_TOKEN)
        raise


async def current_worker(worker_id: str, request: Request, services: ServicesDep) -> WorkerRecord:
    """The worker in the path, authenticated by the token issued to it."""
    return await authenticate_worker(request, services, worker_id)


AdminDep = Depends(require_admin)
WorkerDep = Annotated[WorkerRecord, Depends(current_worker)]
