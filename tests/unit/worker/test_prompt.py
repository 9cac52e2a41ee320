"""The iteration prompt and the appended protocol."""

from __future__ import annotations

from ai_factory.core.spec import parse_tasks
from ai_factory.worker.gate import GateResult
from ai_factory.worker.prompt import PromptContext, iteration_prompt, system_prompt

SPEC = "# Work\n\n- [x] Create `app.py`\n- [ ] Create `b.txt`\n"
FAILED = GateResult(False, "pytest -q", 1, "E   NameError: name 'BUG' is not defined\napp.py:1")


def context(**kwargs: object) -> PromptContext:
    values: dict[str, object] = {
        "iteration": 2, "max_iterations": 20, "spec": SPEC, "tasks": parse_tasks(SPEC),
    }  # fmt: skip
    values.update(kwargs)
    return PromptContext(**values)  # type: ignore[arg-type]


def test_prompt_carries_the_spec_and_progress_but_no_gate_section_when_it_passed() -> None:
    prompt = iteration_prompt(context())

    assert "iteration 2 of at most 20" in prompt and "1 of 2 tasks done" in prompt
    assert "- [ ] Create `b.txt`" in prompt
    assert "quality gate failed" not in prompt.lower()


def test_gate_failure_comes_last_with_its_output() -> None:
    prompt = iteration_prompt(context(gate_failure=FAILED, notes=["a.txt was locked"]))

    section = prompt[prompt.index("## Quality gate failed") :]
    assert "`pytest -q` exited with code 1" in section and "NameError" in section
    assert prompt.index("<spec>") < prompt.index("## Quality gate failed")
    assert "- a.txt was locked" in prompt


def test_learnings_are_listed_and_bounded() -> None:
    # A default budget's worth (1,500 tokens, about 6,000 characters) goes in whole.
    budgeted = [f"learning {n}: " + "y" * 140 for n in range(40)]
    prompt = iteration_prompt(context(learnings=["use uv", *budgeted, "x" * 50_000]))

    assert "- use uv" in prompt and all(f"- {text}" in prompt for text in budgeted)
    assert "x" * 50_000 not in prompt


def test_a_huge_spec_is_cut_and_points_at_the_file() -> None:
    prompt = iteration_prompt(context(spec=SPEC + "y" * 50_000))

    assert "read SPEC.md for the rest" in prompt and len(prompt) < 30_000


def test_protocol_is_the_reference_protocol() -> None:
    protocol = system_prompt()

    for part in (
        ".ai/stuck.md",
        ".ai/new-learnings.md",
        ".ai/learnings.md",
        "Never push",
        "one task = one commit",
        "another worker",
    ):
        assert part in protocol
