"""The metrics page's charts, built from the dashboard store's series.

Completed, failed and stuck items per day (days in FACTORY_TIMEZONE), success rate per
day, and per finished item: iterations, tokens, duration and, for completed items, cost.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from ai_factory.dashboard.charts import Chart, Series
from ai_factory.dashboard.store import DashboardStore, FinishedItem, Totals
from ai_factory.orchestrator.clock import Clock

DAYS = 14
ITEMS = 30


@dataclass(slots=True)
class MetricsView:
    totals: Totals
    per_day: Chart
    success: Chart
    iterations: Chart
    tokens: Chart
    duration: Chart
    cost: Chart
    items: list[FinishedItem]

    @property
    def charts(self) -> list[Chart]:
        return [self.per_day, self.success, self.iterations, self.tokens, self.duration, self.cost]


def _label(item: FinishedItem) -> str:
    return str(item.id)[:6]


async def build_metrics(store: DashboardStore, clock: Clock, *, days: int = DAYS) -> MetricsView:
    today = clock.now().date()
    first = today - timedelta(days=days - 1)
    day_list = [first + timedelta(days=i) for i in range(days)]
    counts: dict[date, dict[str, int]] = {
        d: {"completed": 0, "failed": 0, "stuck": 0} for d in day_list
    }
    for outcome in await store.outcomes_since(clock.day_start() - timedelta(days=days - 1)):
        day = outcome.created_at.astimezone(clock.tz).date()
        if day in counts:
            counts[day][outcome.status] += 1
    labels = [d.strftime("%b %d") for d in day_list]
    per_day = Chart(
        "Finished items per day",
        labels,
        [
            Series("completed", [counts[d]["completed"] for d in day_list], "ok"),
            Series("failed", [counts[d]["failed"] for d in day_list], "bad"),
            Series("stuck", [counts[d]["stuck"] for d in day_list], "warn"),
        ],
        whole=True,
    )
    rate: list[float | None] = []
    for d in day_list:
        ended = sum(counts[d].values())
        rate.append(round(100 * counts[d]["completed"] / ended, 1) if ended else None)
    success = Chart(
        "Success rate per day",
        labels,
        [Series("success rate", rate, "ok")],
        unit="%",
        kind="line",
        y_max=100,
    )

    items = list(reversed(await store.finished_items(limit=ITEMS)))  # oldest first, left to right
    item_labels = [_label(i) for i in items]
    completed = [i for i in items if i.status == "completed"]
    return MetricsView(
        totals=await store.totals(),
        per_day=per_day,
        success=success,
        iterations=Chart(
            "Iterations per item",
            item_labels,
            [Series("iterations", [i.iterations for i in items], "s0")],
        ),
        tokens=Chart(
            "Tokens per item", item_labels, [Series("tokens", [i.tokens for i in items], "s1")]
        ),
        duration=Chart(
            "Duration per item (minutes)",
            item_labels,
            [Series("minutes", [round((i.duration_s or 0) / 60, 2) for i in items], "s2")],
            unit=" min",
        ),
        cost=Chart(
            "Cost per completed item (USD)",
            [_label(i) for i in completed],
            [Series("cost", [round(i.cost_usd, 4) for i in completed], "s3")],
            unit=" $",
        ),
        items=list(reversed(items)),
    )
