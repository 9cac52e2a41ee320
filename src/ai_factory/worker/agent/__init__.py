"""Agent drivers: what runs one iteration of work in the workspace.

Two drivers keep the same contract (`AgentDriver`):

- `ClaudeDriver` (FACTORY_AGENT=claude, the default): one fresh Claude Code
  session per iteration through claude-agent-sdk, with the lock hook;
- `CommandDriver` (FACTORY_AGENT=command): the user's own loop (``ralph``) as a
  subprocess that runs every iteration itself; the worker reads its
  ``iteration:``, ``edit:`` and ``tokens:`` lines.

Modules: `result` (IterationResult), `stream` (SDK messages → result and log
lines), `env` (the agent's environment), `claude`, `command`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from ai_factory.core.errors import FactoryError
from ai_factory.worker.agent.result import IterationResult, RateLimitSignal, StopReason


@dataclass
class AgentRequest:
    """One run of the agent."""

    iteration: int
    prompt: str
    system_prompt: str
    cwd: Path
    max_budget_usd: float | None = None  # the run's spending cap (Claude Code stops there)
    stop: asyncio.Event = field(default_factory=asyncio.Event)  # set: end the run now
    # Self-looping drivers: an inner iteration starts (its number), and one finished (all
    # but the last, which is the run's own result).
    on_inner_start: Callable[[int], None] | None = None
    on_inner_iteration: Callable[[IterationResult], Awaitable[None]] | None = None
    # Usage limits: the factory-wide pause, asked after every tool call (before the request
    # that follows it; a paused factory, or one near a limit whose turn is another worker's,
    # ends the run as limited), and who to tell the moment Claude reports a rejected limit
    # or a window close to its limit (before the run has even ended).
    factory_pause: Callable[[], Awaitable[RateLimitSignal | None]] | None = None
    on_rejected: Callable[[RateLimitSignal], None] | None = None
    on_warning: Callable[[RateLimitSignal], None] | None = None


class AgentDriver(Protocol):
    name: str
    runs_own_loop: bool  # True: one run does every iteration (the loop does not repeat it)

    async def run(self, request: AgentRequest) -> IterationResult:
        """Run the agent once; never raises for agent failures (they are in the result)."""
        ...


class AgentUnavailableError(FactoryError):
    """The agent cannot start at all (binary missing): no retry will help."""


__all__ = [
    "AgentDriver",
    "AgentRequest",
    "AgentUnavailableError",
    "IterationResult",
    "RateLimitSignal",
    "StopReason",
]
