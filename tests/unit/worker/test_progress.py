"""SPEC.md checkboxes as the worker counts them, and the stuck rules."""

from __future__ import annotations

from pathlib import Path

from ai_factory.core.spec import parse_tasks
from ai_factory.worker.progress import ProgressTracker

SPEC = """# Add greetings

Intro with a [x] that is not a task.

- [x] Create `a.txt`
* [ ] Create `b.txt`
1. [X] Numbered and done
  - [ ] Nested task

```markdown
- [ ] inside a code block: not a task
```

## Optional
- [ ] Polish the docs

### Details of optional
- [ ] still optional

## Tests
- [ ] Add tests
"""


def test_parse_tasks_counts_blocking_boxes_only() -> None:
    tasks = parse_tasks(SPEC)

    assert tasks.done == ("Create `a.txt`", "Numbered and done")
    assert tasks.open == ("Create `b.txt`", "Nested task", "Add tests")
    assert tasks.optional_open == ("Polish the docs", "still optional")
    assert tasks.total == 5 and not tasks.all_done
    assert tasks.summary(limit=2) == "2/5 tasks done; left: Create `b.txt`; Nested task (+1 more)"


def test_all_done_needs_at_least_one_task_and_ignores_optional_ones() -> None:
    assert not parse_tasks("# Nothing to do\n").all_done
    assert parse_tasks("- [x] a\n## Future\n- [ ] later\n").all_done


def tracker(tmp_path: Path, spec: str, *, stuck_after: int = 2) -> ProgressTracker:
    (tmp_path / "SPEC.md").write_text(spec)
    return ProgressTracker.start(root=tmp_path, stuck_after=stuck_after, head="h0")


def test_progress_is_a_new_commit_or_a_newly_checked_task(tmp_path: Path) -> None:
    t = tracker(tmp_path, "- [ ] a\n- [ ] b\n")

    assert t.observe(
        head="h1", tasks=parse_tasks("- [ ] a\n- [ ] b\n"), gate_fingerprint=None
    ).progress
    checked = t.observe(head="h1", tasks=parse_tasks("- [x] a\n- [ ] b\n"), gate_fingerprint=None)
    assert checked.progress and checked.newly_checked == ("a",)
    # unchecking and checking the same box again is not progress
    t.observe(head="h1", tasks=parse_tasks("- [ ] a\n- [ ] b\n"), gate_fingerprint=None)
    again = t.observe(head="h1", tasks=parse_tasks("- [x] a\n- [ ] b\n"), gate_fingerprint=None)
    assert not again.progress and again.stuck_reason is not None


def test_stuck_after_n_iterations_without_progress(tmp_path: Path) -> None:
    t = tracker(tmp_path, "- [ ] a\n", stuck_after=3)
    tasks = parse_tasks("- [ ] a\n")

    reasons = [
        t.observe(head="h0", tasks=tasks, gate_fingerprint=None).stuck_reason for _ in range(3)
    ]

    assert reasons[:2] == [None, None]
    assert reasons[2] is not None and "in 3 iterations (STUCK_AFTER=3)" in reasons[2]
    assert "left: a" in reasons[2]


def test_stuck_when_the_same_gate_failure_repeats(tmp_path: Path) -> None:
    t = tracker(tmp_path, "- [ ] a\n- [ ] b\n- [ ] c\n")
    specs = [
        "- [x] a\n- [ ] b\n- [ ] c\n",
        "- [x] a\n- [x] b\n- [ ] c\n",
        "- [x] a\n- [x] b\n- [x] c\n",
    ]

    first = t.observe(head="h1", tasks=parse_tasks(specs[0]), gate_fingerprint="f1")
    other = t.observe(head="h2", tasks=parse_tasks(specs[1]), gate_fingerprint="f2")
    same = t.observe(head="h3", tasks=parse_tasks(specs[2]), gate_fingerprint="f2")

    assert first.stuck_reason is None and other.stuck_reason is None
    assert same.stuck_reason is not None and "failed the same way 2 times" in same.stuck_reason


def test_a_stuck_note_stops_with_its_text_but_an_old_one_does_not(tmp_path: Path) -> None:
    (tmp_path / ".ai").mkdir()
    (tmp_path / ".ai" / "stuck.md").write_text("old note from before")
    t = tracker(tmp_path, "- [ ] a\n", stuck_after=5)
    tasks = parse_tasks("- [ ] a\n")

    assert t.observe(head="h1", tasks=tasks, gate_fingerprint=None).stuck_reason is None
    (tmp_path / ".ai" / "stuck.md").write_text("I need a database password")
    reason = t.observe(head="h2", tasks=tasks, gate_fingerprint=None).stuck_reason
    assert reason == "the agent wrote .ai/stuck.md: I need a database password"


def test_iteration_report_carries_the_checked_tasks_for_remote_dashboards() -> None:
    from ai_factory.core.models import IterationOutcome
    from ai_factory.worker.agent.result import IterationResult
    from ai_factory.worker.progress import iteration_report

    tasks = parse_tasks("# T\n- [x] Create `a.py`\n- [ ] Create `b.py`\n- [x] Run `make`\n")
    report = iteration_report(
        2, IterationResult(input_tokens=10, output_tokens=5), IterationOutcome.PROGRESS, tasks
    )
    wire = report.to_wire()
    assert wire["doneTasks"] == ["Create `a.py`", "Run `make`"]
    assert (wire["tasksDone"], wire["tasksTotal"]) == (2, 3)
    assert wire["message"] == "iteration 2: progress, 2/3 tasks done"
