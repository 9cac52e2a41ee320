"""Per-worker metrics records and the factory-wide summary (`FactoryMetrics`)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from ai_factory.core.models.base import WireModel


class WorkerMetrics(WireModel):
    worker_id: UUID
    work_item_id: UUID | None
    iterations: int
    tokens_used: int
    cost_usd: float = 0.0
    duration_seconds: int
    files_changed: int
    status: str
    created_at: datetime


class FactoryMetrics(WireModel):
    total_work_items: int = 0
    completed_work_items: int = 0
    failed_work_items: int = 0
    average_iterations: float = 0.0
    average_duration: float = 0.0
    total_tokens_today: int = 0
    cost_per_completed_item_usd: float = 0.0  # the agents' reported cost, every attempt
    merged_pull_requests: int = 0  # the factory's pull requests seen merged
    cost_per_merged_pr_usd: float = 0.0  # its item and every follow-up on it
    active_workers: int = 0
    queue_depth: int = 0
