"""The worker end to end: real `claude` (through the SDK) against the scripted model,
real git, the real orchestrator API on a fresh database."""

from __future__ import annotations

from pathlib import Path

import pytest

from ai_factory.sim import SimServer
from ai_factory.worker.main import LaunchEnv, WorkerOptions, WorkerProcess
from tests.e2e.conftest import (
    Origin,
    claude_env,
    item_detail,
    spawn_record,
    spec_of,
    submit,
    worker_settings,
)
from tests.support.server import ServerThread

pytestmark = pytest.mark.e2e


async def test_three_tasks_end_on_a_branch_of_three_commits(
    api: ServerThread, sim: SimServer, origin: Origin, tmp_path: Path
) -> None:
    item = submit(
        api,
        origin.path,
        spec_of(
            "Create `hello.txt` containing `hello`",
            "Create `src/app.py` containing `print(1)`",
            "Append `world` to `hello.txt`",
        ),
    )
    spawned = spawn_record(api, item)
    settings = worker_settings(tmp_path, api)
    launch = LaunchEnv(api.url, spawned.worker_id, spawned.token, spawned.item)
    worker = WorkerProcess(
        settings=settings, launch=launch, options=WorkerOptions(agent_env=claude_env(sim, tmp_path))
    )

    code = await worker.run()

    assert code == 0
    detail = item_detail(api, item.id)
    assert detail["status"] == "completed", detail
    branch = detail["prUrl"].split("#", 1)[1]
    assert origin.log(branch) == [
        "feat: Append `world` to `hello.txt`",
        "feat: Create `src/app.py` containing `print(1)`",
        "feat: Create `hello.txt` containing `hello`",
    ]
    assert origin.files(branch) == ["hello.txt", "src/app.py"]
    assert origin.show(branch, "hello.txt") == "hello\nworld\n"
    assert "SPEC.md" not in origin.tree(branch) and not any(p.startswith(".ai/") for p in origin.tree(branch))
    assert detail["iterations"] == 3 and detail["tokens"] > 0
