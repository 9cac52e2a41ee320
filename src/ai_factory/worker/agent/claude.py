"""The Claude Code driver: one fresh claude-agent-sdk session per iteration.

Owns: the session options (the iteration prompt as the user message, the
factory protocol as the whole system prompt, exactly the tools the protocol uses,
everything that only adds context switched off, the repository's settings and
CLAUDE.md still applied, permissions skipped inside the worktree, the lock hook
on edit tools, the iteration's spending cap) and the watchdog that ends a session that went
quiet (ITERATION_IDLE_TIMEOUT_SECONDS), ran too long (ITERATION_TIMEOUT_SECONDS), hit a
rejected usage limit (the worker waits; the CLI need not), or must stop
because the worker is stopping. Ending a session = leaving the SDK client's
`async with`, which closes the CLI's input and waits for it to exit (SIGTERM, then
SIGKILL, if it does not): a run returns only once its CLI is gone
(docs/claude-cli-notes.md).

`cli_path` replaces the CLI the SDK would start (its bundled one): a worker running
as root gives the wrapper that runs it as the agent's user (`agent_user`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from claude_agent_sdk import (
    ClaudeAgentOptions,
    ClaudeSDKClient,
    ClaudeSDKError,
    CLINotFoundError,
    HookMatcher,
)

from ai_factory.worker.agent import AgentRequest, AgentUnavailableError
from ai_factory.worker.agent.result import IterationResult, StopReason
from ai_factory.worker.agent.stream import StreamRecorder
from ai_factory.worker.agent.versions import installed_cli

log = logging.getLogger(__name__)

# The tools the protocol uses; nothing else is defined in the request (each definition is
# sent with every request: Claude Code's default set is ~31,600 characters, these ~10,500).
WORKER_TOOLS = ("Read", "Write", "Edit", "Bash", "Glob", "Grep")
# Switches that only add context a worker does not use (docs/claude-cli-notes.md says
# what each one removes, measured): no deferred-tool placeholder, no git and pull-request
# instructions or attribution reminder (the protocol says how to commit), no auto-memory
# (what a session learns goes to .ai/new-learnings.md), no built-in subagents.
LEAN_ENV = {
    "ENABLE_TOOL_SEARCH": "false",
    "CLAUDE_CODE_DISABLE_GIT_INSTRUCTIONS": "1",
    "CLAUDE_CODE_DISABLE_AUTO_MEMORY": "1",
    "CLAUDE_AGENT_SDK_DISABLE_BUILTIN_AGENTS": "1",
}
# After every tool call, before the request that follows it, the worker asks whether the
# factory is paused by a usage limit another worker hit; if so the session ends there.
PAUSE_HOOK_EVENTS = ("PostToolUse", "PostToolUseFailure")
# How long an interrupted session may take to end before it is cancelled.
INTERRUPT_WAIT_S = 10.0


class ClaudeDriver:
    name = "claude"
    runs_own_loop = False

    def __init__(
        self,
        *,
        env: Mapping[str, str],
        idle_timeout_s: float,
        wall_timeout_s: float,
        model: str | None = None,
        hooks: dict[str, list[HookMatcher]] | None = None,
        cli_path: str | None = None,
        priced: bool = True,
    ) -> None:
        self.env = dict(env)
        self.priced = priced  # False: the scripted model, whose costs are not real
        self.idle_timeout_s = idle_timeout_s
        self.wall_timeout_s = wall_timeout_s
        self.model = model
        self.hooks = hooks
        self.cli_path = cli_path

    def options(
        self, request: AgentRequest, recorder: StreamRecorder, paused: asyncio.Event
    ) -> ClaudeAgentOptions:
        hooks = {event: list(matchers) for event, matchers in (self.hooks or {}).items()}
        if request.factory_pause is not None:
            pause = HookMatcher(matcher=None, hooks=[_pause_hook(request, recorder, paused)])
            for event in PAUSE_HOOK_EVENTS:
                hooks.setdefault(event, []).append(pause)
        return ClaudeAgentOptions(
            cwd=str(request.cwd),
            permission_mode="bypassPermissions",
            system_prompt=request.system_prompt,  # replaces Claude Code's own (~7,400 chars)
            tools=list(WORKER_TOOLS),
            skills=[],  # no skills listing
            extra_args={"disable-slash-commands": None},
            setting_sources=["project"],  # the repo's CLAUDE.md and .claude/settings.json
            model=self.model,
            max_budget_usd=request.max_budget_usd,
            env={**LEAN_ENV, **self.env},
            hooks=hooks or None,  # type: ignore[arg-type]
            stderr=recorder.add_stderr,
            cli_path=self.cli_path,
        )

    async def run(self, request: AgentRequest) -> IterationResult:
        recorder = StreamRecorder(root=request.cwd, iteration=request.iteration,
                                  priced=self.priced)  # fmt: skip
        limited = asyncio.Event()  # a usage limit ended the run
        paused = asyncio.Event()  # the factory's pause, seen by the hook: the CLI must go
        options = self.options(request, recorder, paused)
        session: list[ClaudeSDKClient] = []  # the client once the prompt is sent, for `_cut`
        closing = asyncio.Event()  # the session is ending: the client is closing the CLI

        async def read(client: ClaudeSDKClient) -> None:
            warned = None
            async for message in client.receive_response():
                recorder.add(message)
                warning = recorder.result.warning
                if warning is not warned and request.on_warning is not None:
                    warned = warning
                    if warning is not None:
                        request.on_warning(warning)  # near a limit: go single file
                if (rejected := recorder.result.rejected) is not None:
                    limited.set()  # stop the CLI now: the worker waits for the reset
                    if request.on_rejected is not None and not rejected.from_factory:
                        request.on_rejected(rejected)  # pause the factory at once
                    return

        async def consume() -> None:
            try:
                # The client, not `query()`: leaving `async with` ends the CLI and waits for
                # its exit, so no session outlives its run (`query()` leaves that to the
                # garbage collector, after the run has returned).
                async with ClaudeSDKClient(options=options) as client:
                    try:
                        await client.query(request.prompt)
                        session.append(client)
                        await read(client)
                    finally:
                        closing.set()
            except CLINotFoundError as exc:
                raise AgentUnavailableError(f"Claude Code not found: {exc}") from exc
            except ClaudeSDKError as exc:  # ProcessError, ResultError, decode errors
                recorder.add_error(exc)

        started = time.monotonic()
        task = asyncio.create_task(consume(), name=f"claude-iteration-{request.iteration}")
        try:
            stop = await self._watch(task, recorder, request.stop, paused, started)
            if stop is not None:
                recorder.result.stop = stop
                await _cut(task, session, closing)
        finally:
            if not task.done():  # this run itself was cancelled: the session goes with it
                if not closing.is_set():
                    task.cancel()
                await asyncio.wait({task})
        if stop is not None:
            if not task.cancelled() and (error := task.exception()) is not None:
                raise error
            if stop in (StopReason.IDLE_TIMEOUT, StopReason.WALL_TIMEOUT):
                log.warning("agent.timeout iteration=%s reason=%s", request.iteration, stop.value)
        else:
            task.result()  # re-raise AgentUnavailableError
            if limited.is_set() or paused.is_set():
                recorder.result.stop = StopReason.LIMITED
        result = recorder.finish()
        if not result.duration_ms:
            result.duration_ms = int((time.monotonic() - started) * 1000)
        return result

    async def _watch(
        self,
        task: asyncio.Task[None],
        recorder: StreamRecorder,
        stop: asyncio.Event,
        paused: asyncio.Event,
        started: float,
    ) -> StopReason | None:
        """Wait for the session; the reason to cut it short, or None when it ended itself."""
        stop_wait = asyncio.create_task(stop.wait())
        paused_wait = asyncio.create_task(paused.wait())
        try:
            while not task.done():
                now = time.monotonic()
                idle_left = recorder.last_event + self.idle_timeout_s - now
                wall_left = started + self.wall_timeout_s - now
                if wall_left <= 0:
                    return StopReason.WALL_TIMEOUT
                if idle_left <= 0:
                    return StopReason.IDLE_TIMEOUT
                await asyncio.wait({task, stop_wait, paused_wait},
                                   timeout=min(idle_left, wall_left),
                                   return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
                if stop.is_set() and not task.done():
                    return StopReason.CANCELLED
                if paused.is_set() and not task.done():
                    return StopReason.LIMITED
            return None
        finally:
            stop_wait.cancel()
            paused_wait.cancel()


async def _cut(
    task: asyncio.Task[None], session: list[ClaudeSDKClient], closing: asyncio.Event
) -> None:
    """End a session cut short. An interrupt makes the CLI abort its request and send
    nothing more (closing its input alone does not: it finishes the turn first); the
    session then ends as any other, leaving the client's `async with`, which closes the CLI
    and waits for its exit (SIGTERM, then SIGKILL, bounded by the SDK). When the interrupt
    gets no end within INTERRUPT_WAIT_S, the session is cancelled, which closes the CLI the
    same way, but only before that close has begun: a cancel inside it would skip the kill."""
    if session and not task.done():
        interrupting = asyncio.create_task(session[0].interrupt())
        ending = asyncio.create_task(closing.wait())
        await asyncio.wait({task, ending}, timeout=INTERRUPT_WAIT_S,
                           return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
        for waiter in (interrupting, ending):
            waiter.cancel()
        await asyncio.wait({interrupting, ending})
        if not interrupting.cancelled() and (error := interrupting.exception()) is not None:
            log.warning("agent.interrupt_failed error=%s", error)  # the cancel below ends it
    if not task.done() and not closing.is_set():
        task.cancel()
    await asyncio.wait({task})


def bundled_cli() -> str:
    """The `claude` the SDK would start: the one in its wheel, else the first on PATH."""
    found = installed_cli()
    if found is None:
        raise AgentUnavailableError("Claude Code not found (the claude-agent-sdk wheel bundles it)")
    return str(found)


def _pause_hook(
    request: AgentRequest, recorder: StreamRecorder, paused: asyncio.Event
) -> Callable[..., Awaitable[dict[str, Any]]]:
    """The hook that ends the session when the factory is paused, or near a limit in
    another worker's turn, recording that as the run's rejected limit.

    A `continue: false` answer is not enough: a session closed meanwhile goes on sending
    requests until its turn ends. So the hook never answers: it sets `paused`, and the
    driver interrupts the session (`_cut`) while the CLI still waits here, before the
    request that would follow the tool (docs/claude-cli-notes.md)."""
    assert request.factory_pause is not None
    factory_pause = request.factory_pause

    async def hook(_input: Any, _tool_use_id: str | None, _context: Any) -> dict[str, Any]:
        signal = await factory_pause()
        if signal is None:
            return {}
        recorder.add_limit(signal)
        if signal.waiting_turn:
            log.warning("limit.single_file iteration=%s (ending the session: another worker's turn)",
                        request.iteration)  # fmt: skip
        else:
            log.warning("limit.factory_paused iteration=%s resets_at=%s (ending the session)",
                        request.iteration, signal.resets_at)  # fmt: skip
        paused.set()
        await asyncio.Event().wait()  # until the session's end cancels this callback
        return {}

    return hook
