"""A small synchronous client for the factory API, used by the CLI commands."""

from __future__ import annotations

from typing import Any

import httpx

from ai_factory.core.api_errors import error_from_response
from ai_factory.core.errors import ApiUnreachableError


class FactoryClient:
    def __init__(self, base_url: str, *, token: str | None = None, timeout: float = 30.0) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ApiUnreachableError(
                f"cannot reach the factory at {self.base_url} ({type(exc).__name__});"
                " is `factory up` running, and is ORCHESTRATOR_URL right?"
            ) from None
        if response.status_code >= 400:
            raise error_from_response(response)
        return response.json() if response.content else None

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params={k: v for k, v in params.items() if v is not None})

    def post(self, path: str, body: Any = None) -> Any:
        return self.request("POST", path, json=body)
