"""Prometheus exposition of the factory's state (`GET /metrics`).

Figures are read from the database at scrape time, so every orchestrator process
reports the same truth and nothing is lost on restart.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Gauge, generate_latest

from ai_factory.core.models import FactoryMetrics, QueueStats, WorkerStats
from ai_factory.orchestrator.spawn_limits import RateLimitStatus

BLOCK_REASONS = (
    "max_workers",
    "daily_budget",
    "cooldown",
    "usage_limit",
    "daily_cost_budget",
    "monthly_cost_budget",
)


def render(
    queue: QueueStats,
    workers: WorkerStats,
    limits: RateLimitStatus,
    metrics: FactoryMetrics | None = None,
) -> bytes:
    registry = CollectorRegistry()
    depth = Gauge("factory_work_items", "Work items by status.", ["status"], registry=registry)
    for status, count in queue.by_status.items():
        depth.labels(status=status).set(count)
    Gauge("factory_queue_depth", "Items waiting to be claimed.", registry=registry).set(
        queue.by_status.get("queued", 0)
    )
    Gauge("factory_active_workers", "Workers registered or working.", registry=registry).set(
        workers.active
    )
    Gauge("factory_stuck_workers", "Workers that reported stuck.", registry=registry).set(workers.stuck)
    Gauge("factory_max_workers", "MAX_WORKERS.", registry=registry).set(limits.max_workers)
    Gauge("factory_iterations_today", "Agent iterations since midnight.", registry=registry).set(
        limits.iterations_today
    )
    Gauge("factory_daily_budget", "DAILY_BUDGET iterations.", registry=registry).set(limits.daily_budget)
    Gauge("factory_tokens_today", "Input+output tokens since midnight.", registry=registry).set(
        limits.tokens_today
    )
    Gauge("factory_cost_today_usd", "Reported agent cost since midnight.", registry=registry).set(
        limits.cost_today_usd
    )
    Gauge("factory_cost_month_usd", "Reported agent cost this month.", registry=registry).set(
        limits.cost_month_usd
    )
    if metrics is not None:
        Gauge(
            "factory_cost_per_completed_item_usd",
            "Reported agent cost per completed item (all its attempts).",
            registry=registry,
        ).set(metrics.cost_per_completed_item_usd)
        Gauge(
            "factory_cost_per_merged_pr_usd",
            "Reported agent cost per merged pull request (its item and every follow-up).",
            registry=registry,
        ).set(metrics.cost_per_merged_pr_usd)
        Gauge(
            "factory_merged_pull_requests", "The factory's pull requests seen merged.",
            registry=registry,
        ).set(metrics.merged_pull_requests)
    Gauge("factory_can_spawn", "1 when a new worker may start now.", registry=registry).set(
        int(limits.can_spawn)
    )
    paused = Gauge(
        "factory_paused_until_seconds",
        "Unix time until which a usage limit pauses spawning (0 when not paused).",
        registry=registry,
    )
    paused.set(limits.paused_until.timestamp() if limits.paused_until else 0)
    blocked = Gauge("factory_spawn_blocked", "1 for each reason spawning waits.", ["reason"], registry=registry)
    for reason in BLOCK_REASONS:
        blocked.labels(reason=reason).set(int(reason in limits.blocked_by))
    utilization = Gauge(
        "factory_usage_window_utilization", "Last reported utilization per window.", ["window"], registry=registry
    )
    for window in limits.windows:
        if window.utilization is not None:
            utilization.labels(window=window.window_type).set(window.utilization)
    return generate_latest(registry)
