"""FACTORY_AGENT=command on its own: a command that closes its output but keeps running
is ended after the idle timeout, not waited for (tests/e2e/test_worker_command.py runs
the driver inside a whole worker)."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

from ai_factory.worker.agent import AgentRequest, StopReason
from ai_factory.worker.agent.command import CommandDriver
from tests.support.processes import pid_alive


async def test_a_command_that_closes_its_output_and_runs_on_is_ended(tmp_path: Path) -> None:
    script = 'echo "[ralph] iteration: 1"; echo $$ > pid; exec >&- 2>&-; sleep 57.1937'
    driver = CommandDriver(argv=["sh", "-c", script], env=dict(os.environ),
                           idle_timeout_s=1, wall_timeout_s=120)  # fmt: skip
    request = AgentRequest(iteration=1, prompt="", system_prompt="", cwd=tmp_path)

    try:
        async with asyncio.timeout(15):  # not the 57 s the command would take
            result = await driver.run(request)
        assert result.stop is StopReason.IDLE_TIMEOUT
        assert not pid_alive(int((tmp_path / "pid").read_text()))
    finally:
        subprocess.run(["pkill", "-f", "sleep 57.1937"], check=False)
