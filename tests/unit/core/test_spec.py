"""SPEC.md's task list, read one way by intake, the worker and the dashboard."""

from __future__ import annotations

import pytest

from ai_factory.core.spec import SpecTask, parse_task_list, parse_tasks
from ai_factory.intake.spec_gen import count_tasks, has_task_list
from ai_factory.worker import progress

FENCED = """# Fences
- [ ] real one

```markdown
- [ ] in backticks
~~~
- [ ] still in backticks: a tilde fence does not close a backtick one
```

~~~
- [ ] in tildes
~~~

````markdown
```python
- [ ] in a short fence inside a longer one
```
- [ ] still in the long fence
````
- [ ] real two
"""

OPTIONAL = """# Work
- [ ] blocking one

## OPTIONAL
- [ ] polish
- [x] checked optional

### Details
- [ ] still optional under a deeper heading

## Tests
- [ ] blocking again

## Optional tasks ##
- [ ] optional again
"""

BULLETS = """# Bullets
- [ ] dash
* [ ] star
+ [ ] plus
1. [ ] numbered
2) [x] numbered with a parenthesis
  - [X] nested, capital X
10. [ ] two digits

Not tasks:
[x] not a list item
- [ ]
-[ ] no space after the bullet
- [y] not a checkbox mark
> - [ ] quoted
"""


def texts(spec: str) -> list[tuple[str, bool, bool]]:
    return [(t.text, t.checked, t.blocking) for t in parse_task_list(spec)]


def test_checkboxes_in_fenced_code_are_not_tasks() -> None:
    assert texts(FENCED) == [("real one", False, True), ("real two", False, True)]


def test_an_unclosed_fence_hides_the_rest_of_the_spec() -> None:
    assert texts("- [ ] before\n```\n- [ ] after\n") == [("before", False, True)]


def test_a_line_with_inline_backticks_is_not_a_fence() -> None:
    assert texts("```not a fence```\n- [ ] a task\n") == [("a task", False, True)]


def test_tasks_under_an_optional_heading_do_not_block() -> None:
    assert texts(OPTIONAL) == [
        ("blocking one", False, True),
        ("polish", False, False),
        ("checked optional", True, False),
        ("still optional under a deeper heading", False, False),
        ("blocking again", False, True),
        ("optional again", False, False),
    ]
    tasks = parse_tasks(OPTIONAL)
    assert tasks.open == ("blocking one", "blocking again")
    assert tasks.optional_open == (
        "polish",
        "still optional under a deeper heading",
        "optional again",
    )
    # checking an optional box is progress, so it counts among the done ones
    assert tasks.done == ("checked optional",)


@pytest.mark.parametrize(
    "heading",
    ["## Future", "## Nice to have", "## Stretch goals", "## Docs (optional)", "### *Optional*:",
     "## Optional: polish", "## Future work"],
)
def test_other_names_of_optional_sections(heading: str) -> None:
    assert parse_tasks(f"- [x] a\n{heading}\n- [ ] later\n").all_done


@pytest.mark.parametrize(
    "heading", ["## Add optional caching", "## Future-proof the API", "## Stretch the layout"]
)
def test_a_heading_that_only_mentions_the_word_is_real_work(heading: str) -> None:
    tasks = parse_tasks(f"- [x] a\n{heading}\n- [ ] required\n")
    assert not tasks.all_done and tasks.open == ("required",)


def test_bullets_numbers_and_marks() -> None:
    assert texts(BULLETS) == [
        ("dash", False, True),
        ("star", False, True),
        ("plus", False, True),
        ("numbered", False, True),
        ("numbered with a parenthesis", True, True),
        ("nested, capital X", True, True),
        ("two digits", False, True),
    ]


def test_tasks_know_their_line() -> None:
    assert parse_task_list("# T\n\n- [ ] a\n```\n- [ ] no\n```\n* [x] b\n") == [
        SpecTask(text="a", checked=False, blocking=True, line=3),
        SpecTask(text="b", checked=True, blocking=True, line=7),
    ]


@pytest.mark.parametrize(
    "spec",
    [
        FENCED,
        OPTIONAL,
        BULLETS,
        "",
        "# Nothing to do\n",
        "## Optional\n- [ ] only optional\n",
        "- [x] all\n- [X] done\n",
    ],
)
def test_intake_and_the_worker_count_the_same_tasks(spec: str) -> None:
    worker = progress.parse_tasks(spec)

    assert count_tasks(spec) == len(worker.open)
    assert has_task_list(spec) == bool(worker.done or worker.open or worker.optional_open)
