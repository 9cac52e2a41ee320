"""Intake's rows in PostgreSQL: webhook deliveries seen, issues waiting for intake.

The only module of `ai_factory.intake` that runs SQL (`queries/intake.sql`).
Used inside the orchestrator process: by the webhook route and by the in-process
submitter. `factory intake` reaches the same rows through the API.
"""

from __future__ import annotations

import logging

from ai_factory.core.db.database import Database
from ai_factory.core.db.queries import load_queries
from ai_factory.intake.models import IntakeRequest

log = logging.getLogger(__name__)

Q = load_queries("intake")

DELIVERY_RETENTION_DAYS = 30


class IntakeStore:
    def __init__(self, *, db: Database) -> None:
        self.db = db

    async def record_delivery(
        self, *, delivery_id: str, event: str, action: str | None, repo: str | None
    ) -> bool:
        """True the first time a delivery id is seen; False for a replay or redelivery."""
        row = await self.db.fetch_one(
            Q["record_delivery"],
            {"delivery_id": delivery_id, "event": event, "action": action, "repo": repo},
        )
        if row is not None:
            await self.db.execute(Q["prune_deliveries"], {"days": DELIVERY_RETENTION_DAYS})
        return row is not None

    async def enqueue(
        self, *, repo: str, issue_number: int, reason: str, delivery_id: str | None = None
    ) -> bool:
        """Ask intake to look at an issue; False when a request for it is already pending."""
        row = await self.db.fetch_one(
            Q["enqueue_request"],
            {
                "repo": repo,
                "issue_number": issue_number,
                "reason": reason,
                "delivery_id": delivery_id,
            },
        )
        if row is not None:
            log.info("intake.requested repo=%s issue=%s reason=%s", repo, issue_number, reason)
        return row is not None

    async def take(self, *, limit: int = 50) -> list[IntakeRequest]:
        """Remove and return up to `limit` pending requests, oldest first."""
        rows = await self.db.fetch_all(Q["take_requests"], {"limit": limit})
        return sorted((IntakeRequest.model_validate(r) for r in rows), key=lambda r: r.id)
