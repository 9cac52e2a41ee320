"""What a worker's session sends with every request: the real `claude` binary, the worker's
options (`ClaudeDriver`), the scripted model recording each request."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from ai_factory.sim import SimServer
from ai_factory.worker.agent import AgentRequest
from ai_factory.worker.agent.claude import WORKER_TOOLS, ClaudeDriver
from ai_factory.worker.prompt import system_prompt
from tests.support.claude_env import claude_env

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
