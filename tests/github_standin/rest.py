"""The REST API's front door: authentication, faults, rate limits, routing, paging.

`RestApi.handle` turns one parsed request into one `RestResponse`; the
endpoint bodies live in `routes`. Every answer carries GitHub's
`x-ratelimit-*` and `x-github-request-id` headers, and successful GETs carry
an ETag and answer `If-None-Match` with 304, as GitHub does.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlencode

from .calls import Call, Reply
from .errors import ApiError
from .faults import Faults, RateLimitWindow, fault_error, primary_limit_error
from .models import RequestRecord
from .payloads import Urls
from .routes import ROUTES, Routes
from .state import StandinState

API_PREFIX = "/api/v3"
DEFAULT_PER_PAGE = 30
MAX_PER_PAGE = 100
_PARAM = re.compile(r"\{(\w+)\}")


@dataclass
class RestRequest:
    method: str
    path: str  # without API_PREFIX and query, still percent-encoded
    query: dict[str, list[str]]
    headers: Mapping[str, str]  # case-insensitive (http.client.HTTPMessage)
    body: bytes


@dataclass
class RestResponse:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)

    def encoded(self) -> bytes:
        if self.body is None:
            return b""
        return json.dumps(self.body, indent=2).encode()


def _compile(template: str) -> re.Pattern[str]:
    """A route's pattern; `{ref}` may hold slashes (a branch like `ai-factory/issue-1`)."""
    def group(found: re.Match[str]) -> str:
        name = found[1]
        return f"(?P<{name}>.+)" if name == "ref" else f"(?P<{name}>[^/]+)"

    return re.compile("^" + _PARAM.sub(group, template) + "$")


class RestApi:
    def __init__(
        self, *, state: StandinState, faults: Faults, window: RateLimitWindow,
        urls: Callable[[], Urls], cache_max_age_s: int,
    ) -> None:
        self._state = state
        self._faults = faults
        self._window = window
        self._urls = urls
        self._cache_max_age_s = cache_max_age_s
        self._routes = [
            (method, template, _compile(template), name) for method, template, name in ROUTES
        ]

    def handle(self, request: RestRequest) -> RestResponse:
        request_id = _request_id()
        login = None
        found = self._route(request.method, request.path)
        route = found[1] if found else f"{request.method} ?"
        try:
            login = self._authenticate(request.headers.get("Authorization"))
            if found is None:
                raise ApiError.not_found()
            handler, _, params = found
            response = self._answer(request, request_id, login, handler, params)
        except ApiError as exc:
            response = RestResponse(exc.status, exc.body(), self._window.snapshot().headers())
        response.headers.update(self._common_headers(request_id))
        self._state.record_request(RequestRecord(
            method=request.method, path=request.path, route=route, status=response.status,
            actor=login, at=time.monotonic(),
        ))
        return response

    def _answer(self, request: RestRequest, request_id: str, login: str,
                handler: str, params: dict[str, str]) -> RestResponse:
        fault = self._faults.take(request.method, request.path)
        if fault is not None:
            error, extra = fault_error(fault, request_id)
            rate = (self._window.exhausted(fault.reset_epoch) if fault.reset_epoch
                    else self._window.snapshot())
            return RestResponse(error.status, error.body(), {**rate.headers(), **extra})
        # GitHub does not count /rate_limit against the limit.
        rate = self._window.snapshot() if handler == "rate_limit" else self._window.consume()
        if rate is None:
            error = primary_limit_error()
            return RestResponse(403, error.body(), self._window.exhausted().headers())
        call = Call(login=login, params=params, query=request.query,
                    body=_parse_json(request.body), urls=self._urls())
        routes = Routes(state=self._state, window=self._window)
        with self._state.lock:
            reply = getattr(routes, handler)(call)
        response = RestResponse(reply.status, reply.body, {**rate.headers(), **reply.headers})
        if reply.items is not None:
            self._paginate(request, reply, response)
        if request.method == "GET" and response.status == 200:
            self._cache(request, response)
        return response

    def _authenticate(self, header: str | None) -> str:
        if not header:
            raise ApiError(401, "Requires authentication",
                           "https://docs.github.com/rest")
        scheme, _, token = header.partition(" ")
        login = self._state.tokens.get(token.strip())
        if scheme.lower() not in ("token", "bearer") or login is None:
            raise ApiError(401, "Bad credentials", "https://docs.github.com/rest")
        return login

    def _route(self, method: str, path: str) -> tuple[str, str, dict[str, str]] | None:
        """(handler name, route, path parameters) for the request, None when unknown."""
        for route_method, template, pattern, name in self._routes:
            found = pattern.match(path)
            if found and route_method == method:
                params = {k: unquote(v) for k, v in found.groupdict().items()}
                return name, f"{method} {template}", params
        return None

    def _paginate(self, request: RestRequest, reply: Reply, response: RestResponse) -> None:
        """Slice `reply.items` by per_page/page and add GitHub's Link header.

        With `reply.wrap` the page goes under that key next to `total_count` (all items).
        """
        items = reply.items or []
        per_page = min(max(_int(request.query, "per_page", DEFAULT_PER_PAGE), 1), MAX_PER_PAGE)
        page = max(_int(request.query, "page", 1), 1)
        last = max((len(items) + per_page - 1) // per_page, 1)
        response.body = items[(page - 1) * per_page: page * per_page]
        if reply.wrap:
            response.body = {"total_count": len(items), reply.wrap: response.body}
        base = f"{self._urls().api}{request.path}"
        query = {k: v[-1] for k, v in request.query.items() if k != "page"}

        def link(number: int, rel: str) -> str:
            return f'<{base}?{urlencode({**query, "page": number})}>; rel="{rel}"'

        links = []
        if page > 1:
            links += [link(min(page - 1, last), "prev")]
        if page < last:
            links += [link(page + 1, "next"), link(last, "last")]
        if page > 1:
            links += [link(1, "first")]
        if links:
            response.headers["link"] = ", ".join(links)

    def _cache(self, request: RestRequest, response: RestResponse) -> None:
        etag = f'W/"{hashlib.sha256(response.encoded()).hexdigest()}"'
        response.headers["etag"] = etag
        age = self._cache_max_age_s
        response.headers["cache-control"] = f"private, max-age={age}, s-maxage={age}"
        response.headers["vary"] = "Accept, Authorization, Cookie, X-GitHub-OTP"
        if request.headers.get("If-None-Match") == etag:
            response.status = 304
            response.body = None

    def _common_headers(self, request_id: str) -> dict[str, str]:
        return {
            "content-type": "application/json; charset=utf-8",
            "x-github-request-id": request_id,
            "x-github-media-type": "github.v3; format=json",
            "x-github-api-version-selected": "2022-11-28",
            "x-oauth-scopes": "repo, workflow",
            "x-accepted-oauth-scopes": "repo",
            "x-content-type-options": "nosniff",
        }


def _request_id() -> str:
    parts = (secrets.token_hex(n).upper() for n in (2, 2, 3, 3, 4))
    return ":".join(parts)


def _int(query: dict[str, list[str]], name: str, default: int) -> int:
    try:
        return int(query[name][-1])
    except (KeyError, ValueError, IndexError):
        return default


def _parse_json(raw: bytes) -> Any:
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise ApiError(400, "Problems parsing JSON") from exc
