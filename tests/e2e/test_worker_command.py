"""FACTORY_AGENT=command: the user's own loop runs every iteration; the worker reads its
`iteration:`, `edit:` and `tokens:` lines (a small stand-in for `ralph` does the work)."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import pytest

from ai_factory.core.models import WorkItem
from ai_factory.worker.main import LaunchEnv, WorkerOptions, WorkerProcess
from tests.support.ledger import spawn_record
from tests.support.origin import Origin
from tests.support.server import ServerThread
from tests.support.settings import worker_settings
from tests.support.work_api import events_of, item_detail, lock_as_another_worker, spec_of, submit

pytestmark = pytest.mark.e2e

FAKE_RALPH = '''
"""A stand-in for `ralph run --headless --spec SPEC.md`: one Create task per iteration."""
import pathlib, re, subprocess, sys

print("argv:", " ".join(sys.argv[1:]), "stdin:", repr(sys.stdin.read()), flush=True)
spec = pathlib.Path("SPEC.md")
number = 0
while True:
    text = spec.read_text()
    task = re.search(r"^- \\[ \\] Create `([^`]+)` containing `([^`]*)`$", text, re.M)
    if task is None:
        break
    number += 1
    path, content = task.group(1), task.group(2)
    print(f"[ralph] iteration: {number}", flush=True)
    print(f"edit: {path}", flush=True)
    pathlib.Path(path).write_text(content + "\\n")
    subprocess.run(["git", "add", "--", path], check=True)
    subprocess.run(["git", "commit", "-q", "-m", f"feat: create {path}"], check=True)
    spec.write_text(text.replace(task.group(0), task.group(0).replace("[ ]", "[x]", 1)))
    print(f"tokens: {100 * number}", flush=True)
print("all tasks done", flush=True)
'''


def command_worker(
    api: ServerThread, item: WorkItem, tmp_path: Path, command: str
) -> WorkerProcess:
    spawned = spawn_record(api, item)
    settings = worker_settings(
        tmp_path, api, factory_agent="command", factory_agent_command=command
    )
    launch = LaunchEnv(api.url, spawned.worker_id, spawned.token, spawned.item)
    return WorkerProcess(settings=settings, launch=launch, options=WorkerOptions())


async def test_command_driver_runs_the_external_loop_and_reads_its_lines(
    api: ServerThread, origin: Origin, tmp_path: Path
) -> None:
    script = tmp_path / "fake_ralph.py"
    script.write_text(FAKE_RALPH)
    spec = spec_of("Create `a.txt` containing `a`", "Create `b.txt` containing `b`")
    lock_as_another_worker(api, origin.path, "b.txt")
    item = submit(api, origin.path, spec)
    command = shlex.join([sys.executable, str(script), "run", "--headless", "--spec", "SPEC.md"])

    code = await command_worker(api, item, tmp_path, command).run()

    assert code == 0
    detail = item_detail(api, item.id)
    assert detail["status"] == "completed"
    assert detail["iterations"] == 2 and detail["tokens"] == 100 + 200
    iterations = events_of(detail, "iteration")
    assert [(e["data"]["iteration"], e["data"]["outputTokens"]) for e in iterations] == [
        (1, 100),
        (2, 200),
    ]
    assert [e["data"]["filesEdited"] for e in iterations] == [["a.txt"], ["b.txt"]]
    conflicts = events_of(detail, "lock_conflict")
    assert [c["data"]["files"] for c in conflicts] == [["b.txt"]], (
        "the edit line asked for the lock"
    )
    branch = detail["prUrl"].split("#", 1)[1]
    assert origin.log(branch) == ["feat: create b.txt", "feat: create a.txt"]


async def test_command_that_fails_fails_the_item_with_its_output(
    api: ServerThread, origin: Origin, tmp_path: Path
) -> None:
    item = submit(api, origin.path, spec_of("Create `a.txt` containing `a`"))
    code_line = "import sys; print('iteration: 1'); print('compiler exploded'); sys.exit(3)"
    command = shlex.join([sys.executable, "-c", code_line])

    code = await command_worker(api, item, tmp_path, command).run()

    assert code == 1
    detail = item_detail(api, item.id)
    assert detail["status"] == "failed"
    assert "exited with code 3" in detail["error"] and "compiler exploded" in detail["error"]


async def test_missing_command_fails_with_what_to_set(
    api: ServerThread, origin: Origin, tmp_path: Path
) -> None:
    item = submit(api, origin.path, spec_of("Create `a.txt` containing `a`"))

    code = await command_worker(api, item, tmp_path, "ralph-that-is-not-installed run").run()

    assert code == 1
    error = item_detail(api, item.id)["error"]
    assert "ralph-that-is-not-installed" in error and "FACTORY_AGENT_COMMAND" in error
