"""`factory demo`: the newcomer's first command, start to end (factory up on the embedded
database, the scheduler spawns a real worker, the real claude binary, the scripted model)."""

from __future__ import annotations

import io

import pytest

from ai_factory.worker.demo import run_demo

pytestmark = pytest.mark.e2e


def test_demo_runs_a_sample_spec_through_the_factory() -> None:
    out = io.StringIO()

    code = run_demo(out=out)

    text = out.getvalue()
    assert code == 0, text
    assert "No Anthropic account is used" in text
    assert (
        "[status] claimed by the scheduler" in text
        and "agent.tool tool=Write file=greet.py" in text
    )
    assert "Result: completed after 4 iteration(s)" in text
    assert "3 files changed" in text and "greet.py" in text and "test_greet.py" in text
