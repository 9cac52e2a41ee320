"""The test orchestrator's HTTP API as worker tests use it: queue a spec, read an item back
with its events, take a lock as another worker, or make any call."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import UUID

import httpx

from ai_factory.core.models import WorkItem
from tests.support.server import ServerThread


def spec_of(*tasks: str, title: str = "Demo work") -> str:
    return f"# {title}\n\n" + "".join(f"- [ ] {t}\n" for t in tasks)


def submit(api: ServerThread, repo: Path | str, spec: str) -> WorkItem:
    response = httpx.post(f"{api.url}/api/work", json={"repo": str(repo), "spec": spec})
    response.raise_for_status()
    return WorkItem.model_validate(response.json())


def item_detail(api: ServerThread, item_id: UUID) -> dict[str, Any]:
    response = httpx.get(f"{api.url}/api/work/{item_id}", params={"events": "true"})
    response.raise_for_status()
    return response.json()


def events_of(detail: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e for e in detail.get("events", []) if e["kind"] == kind]


def lock_as_another_worker(api: ServerThread, repo: Path | str, path: str) -> None:
    """Register a second worker (for another item of `repo`) and take the lock on `path`."""
    other = submit(api, repo, spec_of(f"Append `x` to `{path}`", title="Other work"))
    held = httpx.post(f"{api.url}/api/worker/register", json={"workItemId": str(other.id)}).json()
    locked = httpx.post(
        f"{api.url}/api/worker/{held['workerId']}/lock",
        json={"files": [path]},
        headers={"Authorization": f"Bearer {held['token']}"},
    ).json()
    assert locked["acquired"] == [path], locked


def api_call(api: ServerThread, method: str, path: str, **kwargs: Any) -> Any:
    response = httpx.request(method, f"{api.url}{path}", **kwargs)
    response.raise_for_status()
    return response.json()
