"""What a worker's session sends with every request: the real `claude` binary, the worker's
options (`ClaudeDriver`), the scripted model recording each request."""

from __future__ import annotations

import json
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ai_factory.sim import Scenario, ScenarioName, SimServer
from ai_factory.worker.agent import AgentRequest, RateLimitSignal, StopReason
from ai_factory.worker.agent.claude import INTERRUPT_WAIT_S, WORKER_TOOLS, ClaudeDriver
from ai_factory.worker.prompt import system_prompt
from ai_factory.worker.run_outcome import LimitAction, decide
from tests.support.claude_env import claude_env
from tests.support.processes import claude_children

pytestmark = pytest.mark.e2e

SPEC = "# Work\n\n- [ ] Create `hello.txt` containing `hi`\n"


def repo(path: Path) -> Path:
    path.mkdir()
    for args in (["init", "-q", "-b", "main"], ["config", "user.name", "T"],
                 ["config", "user.email", "t@localhost"]):  # fmt: skip
        subprocess.run(["git", "-C", str(path), *args], check=True)
    (path / "CLAUDE.md").write_text("# Rules\n\nclaude-md-marker-51c2\n")
    subprocess.run(["git", "-C", str(path), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(path), "commit", "-qm", "init"], check=True)
    (path / "SPEC.md").write_text(SPEC)
    return path


async def test_every_request_carries_the_protocol_and_six_tools_only(
    sim: SimServer, tmp_path: Path
) -> None:
    work = repo(tmp_path / "repo")
    driver = ClaudeDriver(env=claude_env(sim, tmp_path), idle_timeout_s=60, wall_timeout_s=120)
    request = AgentRequest(
        iteration=1,
        prompt="Follow the factory protocol. The first unchecked task is task 1.",
        system_prompt=system_prompt(),
        cwd=work,
    )

    result = await driver.run(request)

    assert result.got_result and not result.is_error
    assert (work / "hello.txt").read_text() == "hi\n"
    bodies = [r.body or {} for r in sim.main_requests]
    assert len(bodies) > 3
    for body in bodies:
        assert sorted(t["name"] for t in body["tools"]) == sorted(WORKER_TOOLS)
        system = "".join(block.get("text", "") for block in body["system"])
        assert system_prompt() in system
        assert "toward their goals" not in system  # Claude Code's own prompt is gone
        assert len(json.dumps(body["system"])) + len(json.dumps(body["tools"])) < 20_000
    context = json.dumps(bodies[0]["messages"])
    assert "claude-md-marker-51c2" in context  # the repository's CLAUDE.md still applies
    assert "Primary working directory" in context
    assert "skills are available" not in context and "agent types" not in context


async def test_a_paused_factory_ends_the_session_before_its_next_request(
    sim: SimServer, tmp_path: Path
) -> None:
    """Another worker's limit, learnt after a tool call: Claude Code sends nothing more."""
    work = repo(tmp_path / "repo")
    paused_at: list[float] = []

    async def factory_pause() -> RateLimitSignal | None:
        if len(sim.main_requests) < 2:
            return None
        paused_at.append(time.time())
        return RateLimitSignal(status="rejected", resets_at=int(time.time()) + 60,
                               rate_limit_type="five_hour", raw={"source": "factory"})  # fmt: skip

    driver = ClaudeDriver(env=claude_env(sim, tmp_path), idle_timeout_s=60, wall_timeout_s=120)
    request = AgentRequest(iteration=1, prompt="Do task 1.", system_prompt=system_prompt(),
                           cwd=work, factory_pause=factory_pause)  # fmt: skip

    started = time.monotonic()
    result = await driver.run(request)

    assert time.monotonic() - started < INTERRUPT_WAIT_S, "the interrupt did not end the session"
    assert result.stop is StopReason.LIMITED
    assert result.rejected is not None and result.rejected.from_factory
    assert len(paused_at) == 1
    assert len(sim.main_requests) == 2
    assert all(r.at < paused_at[0] for r in sim.requests), "a request after the pause"
    assert not (work / "hello.txt").exists()
    assert claude_children() == [], "the run returned before its CLI exited"


async def test_a_rejected_limit_is_reported_before_the_session_ends(
    sim: SimServer, tmp_path: Path
) -> None:
    work = repo(tmp_path / "repo")
    sim.set_scenario(Scenario(name=ScenarioName.USAGE_LIMIT, limit_after=1, reset_after_s=30))
    seen: list[RateLimitSignal] = []
    driver = ClaudeDriver(env=claude_env(sim, tmp_path, oauth=True), idle_timeout_s=60,
                          wall_timeout_s=120)  # fmt: skip
    request = AgentRequest(iteration=1, prompt="Do task 1.", system_prompt=system_prompt(),
                           cwd=work)  # fmt: skip
    request.on_rejected = seen.append

    result = await driver.run(request)

    assert result.stop is StopReason.LIMITED
    assert [(signal.status, signal.rate_limit_type) for signal in seen] == [("rejected", "five_hour")]
    assert seen[0].window_resets_at is not None and seen[0].window_resets_at > time.time()
    assert len(sim.main_requests) == 2, "nothing is sent after the refusal"


async def test_a_window_close_to_its_limit_is_reported_while_the_session_runs(
    sim: SimServer, tmp_path: Path
) -> None:
    """The warning reaches the worker (and so the factory, which goes single file) with
    the response that carries it, not when the run ends."""
    work = repo(tmp_path / "repo")
    sim.set_scenario(Scenario(name=ScenarioName.USAGE_LIMIT, limit_after=50, warn_utilization=0.0))
    warned: list[tuple[RateLimitSignal, int]] = []
    driver = ClaudeDriver(env=claude_env(sim, tmp_path, oauth=True), idle_timeout_s=60,
                          wall_timeout_s=120)  # fmt: skip
    request = AgentRequest(iteration=1, prompt="Do task 1.", system_prompt=system_prompt(),
                           cwd=work)  # fmt: skip
    request.on_warning = lambda signal: warned.append((signal, len(sim.main_requests)))

    result = await driver.run(request)

    assert result.got_result and not result.is_error
    assert len(sim.main_requests) > 2
    first, seen_after = warned[0]
    assert (first.status, first.rate_limit_type) == ("allowed_warning", "five_hour")
    assert first.window_resets_at is not None and first.window_resets_at > time.time()
    assert seen_after < len(sim.main_requests), "reported only when the session ended"


async def test_another_workers_turn_near_a_limit_ends_the_session_before_its_next_request(
    sim: SimServer, tmp_path: Path
) -> None:
    work = repo(tmp_path / "repo")
    asked_at: list[float] = []

    async def factory_pause() -> RateLimitSignal | None:
        if len(sim.main_requests) < 2:
            return None
        asked_at.append(time.time())
        return RateLimitSignal(status="rejected", rate_limit_type="five_hour",
                               raw={"source": "factory", "turn": True,
                                    "reason": "five_hour usage window close to its limit"})  # fmt: skip

    driver = ClaudeDriver(env=claude_env(sim, tmp_path), idle_timeout_s=60, wall_timeout_s=120)
    request = AgentRequest(iteration=1, prompt="Do task 1.", system_prompt=system_prompt(),
                           cwd=work, factory_pause=factory_pause)  # fmt: skip

    started = time.monotonic()
    result = await driver.run(request)

    assert time.monotonic() - started < INTERRUPT_WAIT_S, "the interrupt did not end the session"
    assert result.stop is StopReason.LIMITED
    assert result.rejected is not None and result.rejected.waiting_turn
    assert len(asked_at) == 1 and len(sim.main_requests) == 2
    assert all(r.at < asked_at[0] for r in sim.requests), "a request in another worker's turn"
    assert claude_children() == [], "the run returned before its CLI exited"
    decision = decide(result, now=datetime.now(UTC))
    assert decision.action is LimitAction.WAIT_FOR_RESET and decision.delay_s == 0
    assert decision.reason == "five_hour usage window close to its limit: another worker's turn"
