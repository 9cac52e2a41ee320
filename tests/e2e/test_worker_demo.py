"""`factory demo`: the newcomer's first command, start to end (factory up on the embedded
database, the scheduler spawns a real worker, the real claude binary, the scripted model)."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from ai_factory.worker.demo import run_demo

pytestmark = pytest.mark.e2e


def test_demo_runs_a_sample_spec_through_the_factory_and_keeps_the_sample_repo() -> None:
    out = io.StringIO()

    code = run_demo(out=out)

    text = out.getvalue()
    assert code == 0, text
    assert "No Anthropic account is used" in text
    assert (
        "[status] claimed by the scheduler" in text
        and "agent.tool tool=Write file=greet.py" in text
    )
    # The scripted model is free: no cost anywhere, not in the worker's own log lines either.
    assert "Result: completed after 4 iteration(s)" in text and "cost $0.00" in text
    assert not re.search(r"cost_usd=0\.0*[1-9]", text)
    assert "3 files changed" in text and "greet.py" in text and "test_greet.py" in text

    # The command it prints works: the sample repository (with the branch) is still there.
    look = re.search(r"Look at it with: git -C (\S+) diff (\S+)", text)
    assert look, text
    repo, span = Path(look.group(1)), look.group(2)
    diff = subprocess.run(["git", "-C", str(repo), "diff", "--stat", span], capture_output=True,
                          text=True, check=True).stdout  # fmt: skip
    assert "greet.py" in diff
    removal = re.search(r"remove it with: rm -rf (\S+)", text)
    assert removal and repo.is_relative_to(removal.group(1)), text
    assert sorted(p.name for p in Path(removal.group(1)).iterdir()) == ["sample-repo"]
    shutil.rmtree(removal.group(1))
