"""A scripted, in-process `AgentDriver`, for fast tests of the loop (`RalphLoop`).

Each run of the agent takes the next `Run` of the script and performs its steps for
real in the worktree: write or append a file, `git commit` with real git, check a box
in SPEC.md, give up in `.ai/stuck.md`. A run with no steps does nothing. The last
step may end the run the way the Claude driver reports such an end instead:
`UsageLimit` (a rejected ``rate_limit_event`` with its reset time), `TransientError`
(the CLI's result for an overloaded API), `UntilStopped` (blocks until the worker
stops the run). The result is an `IterationResult` filled in as `ClaudeDriver` fills
it in: usage per turn, the files edited, how the run ended.

The driver keeps every `AgentRequest` it was given and when each run started, so a
test can read the prompts and the iteration numbers the loop asked for.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ai_factory.core.spec import SPEC_FILE, parse_task_list
from ai_factory.worker.agent import AgentRequest, IterationResult, RateLimitSignal, StopReason
from ai_factory.worker.progress import STUCK_FILE

# What one agent turn costs, as the CLI's result message would count it.
TURN_INPUT_TOKENS = 1_000
TURN_OUTPUT_TOKENS = 200
TURN_COST_USD = 0.01

OVERLOADED = (
    "API Error: 529 Overloaded. This is a server-side issue, usually temporary — "
    "try again in a moment."
)


@dataclass
class Performing:
    """One run while its steps are performed: the request and the result it builds."""

    request: AgentRequest
    result: IterationResult
    waiting: asyncio.Event  # set while the run waits for the worker to stop it
    ended: bool = False  # a step ended the run (a limit, an error, a stop)

    @property
    def cwd(self) -> Path:
        return self.request.cwd

    def tool_call(self, edited: str | None = None) -> None:
        """One tool call in one agent turn (what the usage is counted by)."""
        self.result.tool_calls += 1
        self.result.num_turns += 1
        if edited is not None and edited not in self.result.files_edited:
            self.result.files_edited.append(edited)


class Step:
    """Something the agent does in a run."""

    async def perform(self, run: Performing) -> None:
        raise NotImplementedError


@dataclass(frozen=True)
class Write(Step):
    """Write `text` to `path` (relative to the worktree), replacing what was there."""

    path: str
    text: str

    async def perform(self, run: Performing) -> None:
        target = run.cwd / self.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(self.text)
        run.tool_call(self.path)


@dataclass(frozen=True)
class Append(Step):
    """Append `text` to `path` (created if missing)."""

    path: str
    text: str

    async def perform(self, run: Performing) -> None:
        target = run.cwd / self.path
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("a") as handle:
            handle.write(self.text)
        run.tool_call(self.path)


@dataclass(frozen=True)
class Commit(Step):
    """`git add --all && git commit -m message` in the worktree, with real git."""

    message: str

    async def perform(self, run: Performing) -> None:
        await _git(run.cwd, "add", "--all")
        await _git(run.cwd, "commit", "--quiet", "-m", self.message)
        run.tool_call()


@dataclass(frozen=True)
class Check(Step):
    """Check the box of the open task whose text is `task` in SPEC.md."""

    task: str

    async def perform(self, run: Performing) -> None:
        spec = run.cwd / SPEC_FILE
        lines = spec.read_text().splitlines(keepends=True)
        found = [t for t in parse_task_list("".join(lines)) if t.text == self.task]
        if not found or found[0].checked:
            raise AssertionError(f"no open task {self.task!r} in {SPEC_FILE}")
        index = found[0].line - 1
        lines[index] = lines[index].replace("[ ]", "[x]", 1)
        spec.write_text("".join(lines))
        run.tool_call(SPEC_FILE)


@dataclass(frozen=True)
class GiveUp(Step):
    """Write `.ai/stuck.md` saying why the agent cannot go on."""

    note: str

    async def perform(self, run: Performing) -> None:
        target = run.cwd / STUCK_FILE
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(self.note + "\n")
        run.tool_call()


@dataclass(frozen=True)
class UsageLimit(Step):
    """The subscription refuses: a rejected ``rate_limit_event`` resetting at `resets_at`
    (epoch seconds). The Claude driver leaves the session there, before any result."""

    resets_at: int
    window: str = "five_hour"

    async def perform(self, run: Performing) -> None:
        run.result.rate_limits.append(
            RateLimitSignal(
                status="rejected",
                resets_at=self.resets_at,
                rate_limit_type=self.window,
                utilization=1.0,
                raw={"status": "rejected", "resetsAt": self.resets_at,
                     "rateLimitType": self.window},
            )
        )  # fmt: skip
        run.result.stop = StopReason.LIMITED
        run.ended = True


@dataclass(frozen=True)
class TransientError(Step):
    """The API stays overloaded: the CLI's error result after its own retries."""

    text: str = OVERLOADED
    status: int = 529

    async def perform(self, run: Performing) -> None:
        result = run.result
        result.got_result = True
        result.is_error = True
        result.subtype = "success"  # the CLI says so even for API errors
        result.result_text = self.text
        result.api_error_status = self.status
        result.api_error_type = "overloaded_error"
        result.terminal_reason = "api_error"
        result.assistant_errors.append("server_error")
        run.ended = True


@dataclass(frozen=True)
class UntilStopped(Step):
    """Keep working until the worker stops the run (its request's stop event)."""

    async def perform(self, run: Performing) -> None:
        run.ended = True
        run.result.stop = StopReason.CANCELLED
        run.waiting.set()
        await run.request.stop.wait()


class Run:
    """One agent run: its steps in order (none: the agent does nothing)."""

    def __init__(self, *steps: Step) -> None:
        self.steps = steps

    def __repr__(self) -> str:
        return f"Run{self.steps!r}"


@dataclass
class ScriptedDriver:
    """An `AgentDriver` whose n-th run performs the n-th `Run` of `script`."""

    script: Sequence[Run]
    name: str = "scripted"
    runs_own_loop: bool = False
    requests: list[AgentRequest] = field(default_factory=list)
    started: list[float] = field(default_factory=list)  # wall-clock start of each run
    waiting: asyncio.Event = field(default_factory=asyncio.Event)  # a run waits to be stopped

    @property
    def prompts(self) -> list[str]:
        return [request.prompt for request in self.requests]

    @property
    def iterations(self) -> list[int]:
        """The iteration number of each run, in order (a run that did not count repeats it)."""
        return [request.iteration for request in self.requests]

    async def run(self, request: AgentRequest) -> IterationResult:
        self.requests.append(request)
        self.started.append(time.time())
        number = len(self.requests)
        if number > len(self.script):
            raise AssertionError(
                f"the script has {len(self.script)} runs; run {number} was asked for"
            )
        started = time.monotonic()
        run = Performing(request, IterationResult(session_id=f"scripted-{number}"), self.waiting)
        for step in self.script[number - 1].steps:
            await step.perform(run)
            if run.ended:
                break
        result = run.result
        if not run.ended:  # the agent's closing message, then the CLI's result
            result.num_turns += 1
            result.got_result = True
            result.subtype = "success"
            result.result_text = f"scripted run {number} finished"
        result.input_tokens = result.num_turns * TURN_INPUT_TOKENS
        result.output_tokens = result.num_turns * TURN_OUTPUT_TOKENS
        result.cost_usd = result.num_turns * TURN_COST_USD
        result.duration_ms = int((time.monotonic() - started) * 1000)
        return result


async def _git(cwd: Path, *args: str) -> None:
    done = await asyncio.to_thread(
        subprocess.run, ["git", *args], cwd=cwd, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {done.stderr.strip()}")
