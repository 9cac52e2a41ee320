"""The real ``claude`` binary (through claude-agent-sdk) against the scripted model.

Each test runs Claude Code sessions in a temporary git repository holding a
SPEC.md and checks what a worker would see: files, commits, checked boxes, and
the SDK messages the CLI surfaces for limits and errors.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from claude_agent_sdk import (
    AssistantMessage,
    ClaudeAgentOptions,
    Message,
    ProcessError,
    RateLimitEvent,
    ResultMessage,
    SystemMessage,
    query,
)

from ai_factory.sim import Scenario, ScenarioName, SimServer, sim_env

pytestmark = pytest.mark.e2e

PROMPT = "Implement the next unchecked task of SPEC.md, commit it, then check it off."


@dataclass
class Session:
    """What one Claude Code session surfaced through the SDK."""

    messages: list[Message] = field(default_factory=list)
    error: ProcessError | None = None

    @property
    def result(self) -> ResultMessage:
        results = [m for m in self.messages if isinstance(m, ResultMessage)]
        assert len(results) == 1, self.messages
        return results[0]

    @property
    def text(self) -> str:
        """The result message's text ("" if it has none)."""
        return self.result.result or ""

    def of(self, kind: type) -> list:
        return [m for m in self.messages if isinstance(m, kind)]

    def system(self, subtype: str) -> list[SystemMessage]:
        return [m for m in self.of(SystemMessage) if m.subtype == subtype]


class Repo:
    """A git working copy with a SPEC.md, as a worker's workspace would be."""

    def __init__(self, path: Path, spec: str) -> None:
        self.path = path
        self.git("init", "-q", "-b", "main")
        self.git("config", "user.name", "Sim Test")
        self.git("config", "user.email", "sim@example.invalid")
        (path / "SPEC.md").write_text(spec)
        self.git("add", "SPEC.md")
        self.git("commit", "-q", "-m", "spec")

    def git(self, *args: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(self.path), *args], check=True, capture_output=True, text=True
        )
        return done.stdout

    @property
    def spec(self) -> str:
        return (self.path / "SPEC.md").read_text()

    @property
    def subjects(self) -> list[str]:
        return self.git("log", "--format=%s").splitlines()

    def read(self, name: str) -> str:
        return (self.path / name).read_text()


@pytest.fixture
def sim() -> Iterator[SimServer]:
    with SimServer() as server:
        yield server


def make_repo(tmp_path: Path, *tasks: str) -> Repo:
    work = tmp_path / "work"
    work.mkdir()
    return Repo(work, "# Spec\n\n" + "".join(f"- [ ] {t}\n" for t in tasks))


async def run_session(
    sim: SimServer,
    repo: Repo,
    *,
    prompt: str = PROMPT,
    oauth: bool = False,
    max_retries: int = 0,
    **extra_env: str,
) -> Session:
    env = sim_env(
        sim.url,
        oauth=oauth,
        max_retries=max_retries,
        config_dir=str(repo.path.parent / "claude-config"),
    )
    env.update(extra_env)
    options = ClaudeAgentOptions(cwd=str(repo.path), permission_mode="bypassPermissions", env=env)
    session = Session()
    try:
        async for message in query(prompt=prompt, options=options):
            session.messages.append(message)
    except ProcessError as exc:  # the CLI exits 1 after an is_error result
        session.error = exc
    return session


async def test_normal_session_implements_commits_and_checks_off_one_task(
    sim: SimServer, tmp_path: Path
) -> None:
    repo = make_repo(
        tmp_path, 'Create `src/hello.py` containing `print("hi")`', "Create `b.txt` containing `b`"
    )

    session = await run_session(sim, repo)

    assert repo.read("src/hello.py") == 'print("hi")\n'
    assert repo.subjects[0] == 'feat: Create `src/hello.py` containing `print("hi")`'
    assert repo.git("show", "--name-only", "--format=", "HEAD").split() == ["src/hello.py"]
    assert '- [x] Create `src/hello.py` containing `print("hi")`' in repo.spec
    assert "- [ ] Create `b.txt` containing `b`" in repo.spec, "one task per session"
    assert not (repo.path / "b.txt").exists()
    result = session.result
    assert not result.is_error and session.error is None
    usage = result.usage or {}
    assert usage["input_tokens"] > 0 and usage["output_tokens"] > 0
    assert usage["cache_read_input_tokens"] > 0
    assert result.total_cost_usd and result.total_cost_usd > 0
    assert all(m.usage and m.usage["input_tokens"] > 0 for m in session.of(AssistantMessage))
    assert session.text.startswith("Done: Create `src/hello.py`")
    assert all(r.main_agent and r.path == "/v1/messages" for r in sim.requests)


async def test_fresh_session_per_task_until_the_spec_is_done(
    sim: SimServer, tmp_path: Path
) -> None:
    repo = make_repo(
        tmp_path,
        "Create `notes.md` containing `# Notes\\nfirst`",
        "Append `second` to `notes.md`",
        "Replace `first` with `1st` in `notes.md`",
        "Run `printf built > out.txt`",
        "Learn `the sim speaks a task language`",
    )

    for done in range(1, 6):
        session = await run_session(sim, repo)
        assert not session.result.is_error, session.text
        assert repo.spec.count("- [x]") == done

    assert repo.read("notes.md") == "# Notes\n1st\nsecond\n"
    assert repo.read("out.txt") == "built"
    assert repo.read(".ai/new-learnings.md") == "- the sim speaks a task language\n"
    assert repo.subjects[:4] == [
        "feat: Run `printf built > out.txt`",
        "feat: Replace `first` with `1st` in `notes.md`",
        "feat: Append `second` to `notes.md`",
        "feat: Create `notes.md` containing `# Notes\\nfirst`",
    ], "Learn tasks make no commit"

    final = await run_session(sim, repo)
    assert "nothing left to do" in final.text
    assert len(repo.subjects) == 5


async def test_task_outside_the_language_is_explained_in_stuck_file(
    sim: SimServer, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path, "Make the app faster")

    session = await run_session(sim, repo)

    assert "do not understand this task: Make the app faster" in repo.read(".ai/stuck.md")
    assert "- [ ] Make the app faster" in repo.spec
    assert repo.subjects == ["spec"]
    assert not session.result.is_error


async def test_stuck_scenario_makes_no_progress(sim: SimServer, tmp_path: Path) -> None:
    repo = make_repo(tmp_path, "Create `a.txt` containing `a`")
    sim.set_scenario(Scenario(name=ScenarioName.STUCK))

    for _ in range(2):
        session = await run_session(sim, repo)
        assert "still thinking" in session.text

    assert repo.subjects == ["spec"]
    assert repo.git("status", "--porcelain") == ""


async def test_stuck_file_scenario_writes_why(sim: SimServer, tmp_path: Path) -> None:
    repo = make_repo(tmp_path, "Create `a.txt` containing `a`")
    sim.set_scenario(Scenario(name=ScenarioName.STUCK_FILE))

    await run_session(sim, repo)

    assert "cannot make progress on: Create `a.txt`" in repo.read(".ai/stuck.md")
    assert repo.subjects == ["spec"] and "- [ ] Create" in repo.spec


PYTEST_GATE = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_app.py"]
GREP_GATE = ["sh", "-c", "! grep -rq BUG --include=*.py ."]  # silent: names no file


@pytest.mark.parametrize("gate_argv", [PYTEST_GATE, GREP_GATE], ids=["pytest", "grep"])
async def test_gate_scenario_fails_the_gate_then_fixes_it(
    sim: SimServer, tmp_path: Path, gate_argv: list[str]
) -> None:
    repo = make_repo(
        tmp_path, "Create `app.py` containing `ANSWER = 42`", "Create `b.txt` containing `b`"
    )
    (repo.path / "test_app.py").write_text(
        "from app import ANSWER\n\n\ndef test_answer():\n    assert ANSWER == 42\n"
    )
    repo.git("add", "test_app.py")
    repo.git("commit", "-q", "-m", "test")
    sim.set_scenario(Scenario(name=ScenarioName.GATE))

    def gate() -> subprocess.CompletedProcess[str]:
        return subprocess.run(gate_argv, check=False, cwd=repo.path, capture_output=True, text=True)

    await run_session(sim, repo)
    first = gate()
    assert first.returncode != 0
    assert repo.read("app.py").startswith("BUG")
    assert "- [x] Create `app.py`" in repo.spec

    gate_output = f"gate exited {first.returncode}:\n{first.stdout[-2000:]}"
    failure = f"{PROMPT}\n\nSPEC.md:\n{repo.spec}\n## Quality gate failed\n\n{gate_output}"
    session = await run_session(sim, repo, prompt=failure)

    assert gate().returncode == 0
    assert repo.read("app.py") == "ANSWER = 42\n"
    assert repo.subjects[:2] == [
        "fix: Create `app.py` containing `ANSWER = 42`",
        "feat: Create `app.py` containing `ANSWER = 42`",
    ]
    assert session.text.startswith("Fixed")
    assert "- [ ] Create `b.txt`" in repo.spec, "the fix session does not start the next task"


async def test_usage_limit_on_subscription_surfaces_reset_time(
    sim: SimServer, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path, "Create `a.txt` containing `a`")
    limit = Scenario(
        name=ScenarioName.USAGE_LIMIT, limit_after=3, reset_after_s=3, warn_utilization=0.5
    )
    sim.set_scenario(limit)

    limited = await run_session(sim, repo, oauth=True)

    statuses = [r.status for r in sim.requests]
    assert statuses == [200, 200, 200, 429], "the CLI does not retry a subscription usage limit"
    infos = [e.rate_limit_info for e in limited.of(RateLimitEvent)]
    assert infos[0].status == "allowed" and infos[-1].status == "rejected"
    assert "allowed_warning" in [i.status for i in infos[1:-1]]
    rejected = infos[-1]
    assert rejected.rate_limit_type == "five_hour"
    assert rejected.resets_at is not None and 0 < rejected.resets_at - time.time() <= 4
    (error_turn,) = [m for m in limited.of(AssistantMessage) if m.error]
    assert error_turn.error == "rate_limit"
    result = limited.result
    assert result.is_error and result.api_error_status == 429
    assert limited.text.startswith("You've hit your 5-hour limit · resets ")
    assert limited.error is not None and "hit your 5-hour limit" in str(limited.error)
    assert repo.read("a.txt") == "a\n", "the turn before the limit was carried out"
    assert repo.subjects == ["spec"]

    await asyncio.sleep(max(0.0, rejected.resets_at - time.time()) + 0.2)
    after_reset = await run_session(sim, repo, oauth=True)
    assert not after_reset.result.is_error
    assert "- [x] Create `a.txt`" in repo.spec
    assert repo.subjects[0] == "feat: Create `a.txt` containing `a`"


async def test_usage_limit_with_api_key_gives_plain_429_and_no_reset_time(
    sim: SimServer, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path, "Create `a.txt` containing `a`")
    sim.set_scenario(Scenario(name=ScenarioName.USAGE_LIMIT, limit_after=1, reset_after_s=600))

    session = await run_session(sim, repo, max_retries=3)

    assert not session.of(RateLimitEvent)
    result = session.result
    assert result.is_error and result.api_error_status == 429
    assert session.text.startswith("API Error: Request rejected (429)")
    assert [r.status for r in sim.requests] == [200, 429], "a far reset is not waited for"


async def test_overloaded_is_retried_by_the_cli(sim: SimServer, tmp_path: Path) -> None:
    repo = make_repo(tmp_path, "Create `a.txt` containing `a`")
    sim.set_scenario(Scenario(name=ScenarioName.OVERLOADED, overloaded_count=2))

    session = await run_session(sim, repo, max_retries=2)

    retries = session.system("api_retry")
    assert [r.data["error_status"] for r in retries] == [529, 529]
    assert [r.data["attempt"] for r in retries] == [1, 2]
    assert not session.result.is_error
    assert repo.read("a.txt") == "a\n"


async def test_overloaded_beyond_retries_fails_the_session(sim: SimServer, tmp_path: Path) -> None:
    repo = make_repo(tmp_path, "Create `a.txt` containing `a`")
    sim.set_scenario(Scenario(name=ScenarioName.OVERLOADED, overloaded_count=5))

    session = await run_session(sim, repo, max_retries=0)

    result = session.result
    assert result.is_error and result.api_error_status == 529
    assert session.text.startswith("API Error: 529 Overloaded")
    assert session.of(AssistantMessage)[-1].error == "server_error"


async def test_auth_error_says_invalid_api_key(sim: SimServer, tmp_path: Path) -> None:
    repo = make_repo(tmp_path, "Create `a.txt` containing `a`")
    sim.set_scenario(Scenario(name=ScenarioName.AUTH_ERROR))

    session = await run_session(sim, repo)

    result = session.result
    assert result.is_error and result.api_error_status == 401
    assert session.text == "Invalid API key · Fix external API key"
    assert session.of(AssistantMessage)[-1].error == "authentication_failed"
    assert len(sim.requests) == 1


async def test_slow_stream_is_waited_for(sim: SimServer, tmp_path: Path) -> None:
    repo = make_repo(tmp_path)  # nothing to do: two model turns
    sim.set_scenario(Scenario(name=ScenarioName.SLOW, delay_s=1.5))

    session = await run_session(sim, repo)

    assert "nothing left to do" in session.text
    assert session.result.duration_api_ms >= 2 * 1500


async def test_request_stalled_before_headers_hits_api_timeout(
    sim: SimServer, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path, "Create `a.txt` containing `a`")
    sim.set_scenario(Scenario(name=ScenarioName.SLOW, delay_s=3, delay_phase="before_headers"))

    session = await run_session(sim, repo, API_TIMEOUT_MS="1000")

    assert session.result.is_error
    # "Request timed out." plus advice since CLI 2.1.330; "Request timed out" alone in 2.1.314
    assert session.text.startswith("Request timed out")


def test_server_answers_side_requests_and_switches_scenario(sim: SimServer) -> None:
    side = {
        "model": "claude-haiku",
        "max_tokens": 50,
        "messages": [{"role": "user", "content": "title?"}],
    }
    reply = httpx.post(f"{sim.url}/v1/messages", json=side).json()
    assert [b["type"] for b in reply["content"]] == ["text"]
    assert reply["usage"]["input_tokens"] > 0 and reply["usage"]["output_tokens"] > 0

    tokens = httpx.post(f"{sim.url}/v1/messages/count_tokens", json=side).json()
    assert tokens["input_tokens"] > 0

    switched = httpx.post(f"{sim.url}/_sim/scenario", json={"name": "auth_error"})
    assert switched.json()["name"] == "auth_error"
    assert httpx.post(f"{sim.url}/v1/messages", json=side).status_code == 401
    assert httpx.post(f"{sim.url}/_sim/scenario", json={"name": "nope"}).status_code == 422

    log = httpx.get(f"{sim.url}/_sim/requests").json()
    assert [r["status"] for r in log if r["path"] == "/v1/messages"] == [200, 401]
    assert all(not r["main_agent"] for r in log)
