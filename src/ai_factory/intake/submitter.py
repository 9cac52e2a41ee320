"""How intake reaches the queue: directly inside the orchestrator, or over its API.

`Submitter` is what the intake loop needs from the factory: submit an issue's
spec (idempotent per source `github`, clone URL and issue number: a second
submit returns the active item with created=False), find an issue's items,
retry a stuck one, cancel one nobody has claimed, and take the issues webhooks
asked about. `DirectSubmitter` calls `QueueManager` and `IntakeStore` (`factory
up`); `ApiSubmitter` calls the HTTP API at ORCHESTRATOR_URL with
FACTORY_API_TOKEN (`factory intake`, e.g. as its own compose service).
"""

from __future__ import annotations

from typing import Any, Protocol
from uuid import UUID

import httpx

from ai_factory.core.api_errors import error_from_response
from ai_factory.core.errors import ApiUnreachableError, InvalidInputError, NotFoundError
from ai_factory.core.models import CreateWorkItemInput, Source, WorkItem
from ai_factory.intake.models import IntakeRequest
from ai_factory.intake.store import IntakeStore
from ai_factory.orchestrator.queue import QueueManager

ITEMS_PER_ISSUE = 20


def followup_source(pr_number: int) -> str:
    """The source id of a pull request's follow-ups (one active at a time, as for an issue)."""
    return f"pr-{pr_number}"
API_TIMEOUT_S = 30.0


class Submitter(Protocol):
    async def submit(self, data: CreateWorkItemInput) -> tuple[WorkItem, bool]: ...

    async def items_for(self, *, repo_url: str, issue_number: int) -> list[WorkItem]:
        """The issue's work items, newest first."""
        ...

    async def retry(self, item_id: UUID) -> WorkItem: ...

    async def cancel_queued(
        self, *, repo_url: str, issue_number: int, reason: str
    ) -> WorkItem | None: ...

    async def take_requests(self, *, limit: int = 50) -> list[IntakeRequest]: ...

    async def item(self, item_id: str) -> WorkItem | None:
        """The item with this id (or unique id prefix); None when there is none."""
        ...

    async def pull_followups(self, *, repo_url: str, pr_number: int) -> list[WorkItem]:
        """The follow-ups of a pull request, newest first."""
        ...

    async def cancel_followups(
        self, *, repo_url: str, pr_number: int, reason: str
    ) -> WorkItem | None:
        """Cancel the pull request's follow-up if it is still queued."""
        ...

    async def record_merged(self, item_id: str) -> None:
        """The item's pull request was merged."""
        ...

    async def close(self) -> None: ...


class DirectSubmitter:
    def __init__(self, *, queue: QueueManager, store: IntakeStore) -> None:
        self.queue = queue
        self.store = store

    async def submit(self, data: CreateWorkItemInput) -> tuple[WorkItem, bool]:
        return await self.queue.add(data)

    async def items_for(self, *, repo_url: str, issue_number: int) -> list[WorkItem]:
        return await self.queue.list(
            repo=repo_url, source=Source.GITHUB, source_id=str(issue_number), limit=ITEMS_PER_ISSUE
        )

    async def retry(self, item_id: UUID) -> WorkItem:
        return await self.queue.retry(item_id, reason="intake label added again")

    async def cancel_queued(
        self, *, repo_url: str, issue_number: int, reason: str
    ) -> WorkItem | None:
        return await self.queue.cancel_queued(
            source=Source.GITHUB, repo=repo_url, source_id=str(issue_number), reason=reason
        )

    async def take_requests(self, *, limit: int = 50) -> list[IntakeRequest]:
        return await self.store.take(limit=limit)

    async def item(self, item_id: str) -> WorkItem | None:
        try:
            return await self.queue.get(item_id)
        except (NotFoundError, InvalidInputError):
            return None

    async def pull_followups(self, *, repo_url: str, pr_number: int) -> list[WorkItem]:
        return await self.queue.list(
            repo=repo_url, source=Source.GITHUB, source_id=followup_source(pr_number),
            limit=ITEMS_PER_ISSUE,
        )  # fmt: skip

    async def cancel_followups(
        self, *, repo_url: str, pr_number: int, reason: str
    ) -> WorkItem | None:
        return await self.queue.cancel_queued(
            source=Source.GITHUB, repo=repo_url, source_id=followup_source(pr_number),
            reason=reason,
        )  # fmt: skip

    async def record_merged(self, item_id: str) -> None:
        await self.queue.record_merge(item_id)

    async def close(self) -> None:
        return None


class ApiSubmitter:
    def __init__(
        self, *, base_url: str, token: str | None = None, timeout_s: float = API_TIMEOUT_S
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.base_url = base_url.rstrip("/")
        self._http = httpx.AsyncClient(base_url=self.base_url, headers=headers, timeout=timeout_s)

    async def submit(self, data: CreateWorkItemInput) -> tuple[WorkItem, bool]:
        response = await self._request("POST", "/api/work", json=data.to_wire())
        return WorkItem.model_validate(response.json()), response.status_code == 201

    async def items_for(self, *, repo_url: str, issue_number: int) -> list[WorkItem]:
        params = {
            "source": "github",
            "sourceId": str(issue_number),
            "repo": repo_url,
            "limit": ITEMS_PER_ISSUE,
        }
        response = await self._request("GET", "/api/work", params=params)
        return [WorkItem.model_validate(each) for each in response.json()]

    async def retry(self, item_id: UUID) -> WorkItem:
        response = await self._request("POST", f"/api/work/{item_id}/retry")
        return WorkItem.model_validate(response.json()["item"])

    async def cancel_queued(
        self, *, repo_url: str, issue_number: int, reason: str
    ) -> WorkItem | None:
        body = {"repo": repo_url, "issueNumber": issue_number, "reason": reason}
        found = (await self._request("POST", "/api/intake/cancel", json=body)).json().get("item")
        return WorkItem.model_validate(found) if found else None

    async def take_requests(self, *, limit: int = 50) -> list[IntakeRequest]:
        response = await self._request("POST", "/api/intake/requests/take", params={"limit": limit})
        return [IntakeRequest.model_validate(each) for each in response.json()]

    async def item(self, item_id: str) -> WorkItem | None:
        try:
            response = await self._request("GET", f"/api/work/{item_id}")
        except (NotFoundError, InvalidInputError):
            return None
        return WorkItem.model_validate(response.json())

    async def pull_followups(self, *, repo_url: str, pr_number: int) -> list[WorkItem]:
        params = {"source": "github", "sourceId": followup_source(pr_number), "repo": repo_url,
                  "limit": ITEMS_PER_ISSUE}  # fmt: skip
        response = await self._request("GET", "/api/work", params=params)
        return [WorkItem.model_validate(each) for each in response.json()]

    async def cancel_followups(
        self, *, repo_url: str, pr_number: int, reason: str
    ) -> WorkItem | None:
        body = {"repo": repo_url, "sourceId": followup_source(pr_number), "reason": reason}
        found = (await self._request("POST", "/api/intake/cancel", json=body)).json().get("item")
        return WorkItem.model_validate(found) if found else None

    async def record_merged(self, item_id: str) -> None:
        await self._request("POST", "/api/intake/merged", json={"itemId": item_id})

    async def close(self) -> None:
        await self._http.aclose()

    async def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = await self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ApiUnreachableError(
                f"cannot reach the factory at {self.base_url} ({type(exc).__name__});"
                " is ORCHESTRATOR_URL right?"
            ) from exc
        if response.status_code >= 400:
            raise error_from_response(response)
        return response
