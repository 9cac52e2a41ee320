"""The quality gate runs a real command: its result, its output's tail, its time limit,
and a command that leaves a server behind holding the output open."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from ai_factory.worker.gate import QualityGate


def gate(script: str, timeout_s: float = 30) -> QualityGate:
    return QualityGate(argv=["sh", "-c", script], timeout_s=timeout_s)


@pytest.fixture
def leftover() -> Iterator[str]:
    """A `sleep` with a duration no other process uses, killed after the test."""
    duration = "47.3913"
    yield duration
    subprocess.run(["pkill", "-f", f"sleep {duration}"], check=False)


async def test_a_passing_and_a_failing_command_with_their_output(tmp_path: Path) -> None:
    passed = await gate("echo 3 tests passed").run(tmp_path)
    failed = await gate("echo 'FAILED test_x' >&2; exit 3").run(tmp_path)

    assert passed.passed and passed.exit_code == 0 and passed.output_tail == "3 tests passed"
    assert not failed.passed and failed.exit_code == 3 and "FAILED test_x" in failed.output_tail


async def test_a_command_over_its_time_is_killed_with_what_it_printed(tmp_path: Path) -> None:
    result = await gate("echo started; sleep 30", timeout_s=2).run(tmp_path)

    assert not result.passed and result.timed_out
    assert result.output_tail.startswith("started\n")
    assert "GATE_TIMEOUT_SECONDS=2" in result.output_tail
    assert result.duration_s < 10


async def test_a_server_left_running_does_not_hold_the_gate(tmp_path: Path, leftover: str) -> None:
    """The tests pass but start a server in a session of its own that keeps the output
    pipe open: the gate ends soon after the command, not when the server does."""
    script = f"setsid sleep {leftover} & echo 12 tests passed"

    async with asyncio.timeout(10):  # not GATE_TIMEOUT_SECONDS (30 s), nor the 47 s server
        result = await gate(script, timeout_s=30).run(tmp_path)

    assert result.passed and not result.timed_out
    assert result.output_tail == "12 tests passed"
