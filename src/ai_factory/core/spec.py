"""SPEC.md's task list: the one reading of its checkboxes, shared by intake, worker and dashboard.

A task is a list item with a checkbox and some text: ``- [ ] text`` is open,
``- [x]`` or ``- [X]`` is done. The bullet may be ``-``, ``*``, ``+``, ``1.`` or
``1)``, at any indentation (nested tasks count).

Not tasks: anything inside a fenced code block (```` ``` ```` or ``~~~``, closed by
a fence of the same character at least as long, as in CommonMark; an unclosed
fence runs to the end), and a checkbox with no text after it.

Tasks under a heading that is Optional, Future, Nice to have, Stretch or Out of
scope (maybe with "work", "goals", "tasks"... or a colon after it), or names one in
parentheses ("## Docs (optional)"), at any level and until the next heading of the
same or a higher level, are not blocking: the work is done without them, so an
agent that leaves them open does not loop forever (docs/design.md#choices).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

SPEC_FILE = "SPEC.md"

_CHECKBOX = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+\[(?P<mark>[ xX])\]\s+(?P<text>\S.*?)\s*$")
_HEADING = re.compile(r"^ {0,3}(?P<level>#{1,6})(?:\s+(?P<title>.*?))?(?:\s+#+)?\s*$")
# A backtick fence's info string cannot hold a backtick (```a``` is inline code).
_FENCE_OPEN = re.compile(r"^\s*(?P<fence>`{3,}(?=[^`]*$)|~{3,})")
_FENCE_CLOSE = re.compile(r"^\s*(?P<fence>`{3,}|~{3,})\s*$")
# The heading must be the word ("## Optional", "## Future work", "## Stretch goals:
# polish") or say it in parentheses ("## Docs (optional)"): "## Add optional caching"
# and "## Future-proof the API" are real work.
_OPTIONAL_WORDS = r"(?:optional|future|nice[ -]to[ -]have|stretch|out of scope)"
_OPTIONAL_NOUNS = r"(?:\s+(?:work|goals?|tasks?|ideas?|items?|extras?|improvements?))?"
_OPTIONAL = re.compile(
    rf"^\W*{_OPTIONAL_WORDS}{_OPTIONAL_NOUNS}\W*(?::.*)?$|\(\s*{_OPTIONAL_WORDS}\s*\)",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class SpecTask:
    """One checkbox task of a SPEC.md."""

    text: str
    checked: bool
    blocking: bool  # False under an Optional (Future, Stretch, ...) heading
    line: int  # 1-based line number in the spec


def parse_task_list(spec: str) -> list[SpecTask]:
    """Every task of `spec`, in order."""
    tasks: list[SpecTask] = []
    fence: str | None = None  # the opening fence of the code block we are in
    optional_level: int | None = None  # heading level of the optional section we are in
    for number, line in enumerate(spec.splitlines(), start=1):
        if fence is not None:
            closing = _FENCE_CLOSE.match(line)
            if closing and closing["fence"][0] == fence[0] and len(closing["fence"]) >= len(fence):
                fence = None
            continue
        if opening := _FENCE_OPEN.match(line):
            fence = opening["fence"]
            continue
        if heading := _HEADING.match(line):
            level = len(heading["level"])
            if optional_level is not None and level <= optional_level:
                optional_level = None
            if optional_level is None and _OPTIONAL.search(heading["title"] or ""):
                optional_level = level
            continue
        if box := _CHECKBOX.match(line):
            tasks.append(
                SpecTask(
                    text=box["text"],
                    checked=box["mark"] != " ",
                    blocking=optional_level is None,
                    line=number,
                )
            )
    return tasks


@dataclass(frozen=True)
class SpecTasks:
    """A SPEC.md's tasks as progress counts them, in order.

    `done` holds every checked task (checking an optional one is progress too);
    `open` the unchecked blocking ones, which decide when the work is done.
    """

    done: tuple[str, ...] = ()
    open: tuple[str, ...] = ()
    optional_open: tuple[str, ...] = ()

    @classmethod
    def of(cls, tasks: Iterable[SpecTask]) -> SpecTasks:
        done: list[str] = []
        open_: list[str] = []
        optional: list[str] = []
        for task in tasks:
            if task.checked:
                done.append(task.text)
            elif task.blocking:
                open_.append(task.text)
            else:
                optional.append(task.text)
        return cls(done=tuple(done), open=tuple(open_), optional_open=tuple(optional))

    @property
    def total(self) -> int:
        return len(self.done) + len(self.open)

    @property
    def all_done(self) -> bool:
        return self.total > 0 and not self.open

    def summary(self, *, limit: int = 10) -> str:
        """``3/5 tasks done; left: a; b`` for reports."""
        text = f"{len(self.done)}/{self.total} tasks done"
        if self.open:
            shown = "; ".join(self.open[:limit])
            more = f" (+{len(self.open) - limit} more)" if len(self.open) > limit else ""
            text += f"; left: {shown}{more}"
        return text


def parse_tasks(spec: str) -> SpecTasks:
    return SpecTasks.of(parse_task_list(spec))
