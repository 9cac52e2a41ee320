"""The task mini-language the scripted model understands in SPEC.md.

Owns: parsing SPEC.md checkbox lines into `SpecTask`s and each task's text into
a `TaskAction`. A task line is ``- [ ] <text>`` (``- [x]`` once done); ``*`` works
as the bullet too. Arguments sit between single backticks; inside them ``\\n``,
``\\t`` and ``\\\\`` are escapes for newline, tab and backslash (an argument
cannot contain a backtick). Verbs are case-insensitive:

=========================================  ====================================
``Create `path` containing `content```      write the file (parents created);
                                            a final newline is added if missing
``Append `text` to `path```                 add text as new line(s) at the end
                                            (file created if missing)
``Replace `old` with `new` in `path```      exact string replacement (Edit)
``Run `command```                           run it with Bash
``Learn `fact```                            append ``- fact`` to
                                            ``.ai/new-learnings.md`` (no commit)
``Merge `base` into this branch``           resolve the conflict markers of a merge
                                            in progress (keep both sides), commit it
anything else                               not understood: see `agent`
=========================================  ====================================

A task that does not start with a verb may carry one after a colon: ``Address the
review comment by @alice on `a.py` line 3: Replace `x` with `y` in `a.py``` does the
Replace (follow-ups quote the feedback that way). Paths are relative to the working directory; ``with`` may stand for
``containing``. Append rebuilds the file from the Read tool's output, which is
right for the small files tests use (Read truncates very long files); Replace's
``old`` must occur exactly once (Edit's rule).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

_TASK_RE = re.compile(r"^(?P<indent>\s*)[-*]\s+\[(?P<mark>[ xX])\]\s+(?P<text>\S.*?)\s*$")
_ARG = r"`([^`]*)`"
_FORMS: list[tuple[str, re.Pattern[str]]] = [
    ("create", re.compile(rf"^create\s+{_ARG}\s+(?:containing|with)\s+{_ARG}", re.IGNORECASE)),
    ("append", re.compile(rf"^append\s+{_ARG}\s+to\s+{_ARG}", re.IGNORECASE)),
    ("replace", re.compile(rf"^replace\s+{_ARG}\s+with\s+{_ARG}\s+in\s+{_ARG}", re.IGNORECASE)),
    ("run", re.compile(rf"^run\s+{_ARG}", re.IGNORECASE)),
    ("learn", re.compile(rf"^learn\s+{_ARG}", re.IGNORECASE)),
    ("merge", re.compile(rf"^merge\s+{_ARG}\s+into\s+this\s+branch", re.IGNORECASE)),
]
_QUOTED_VERB = re.compile(r":\s+(?=(?:create|append|replace|run|learn|merge)\s+`)", re.IGNORECASE)
_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\"}
LEARNINGS_PATH = ".ai/new-learnings.md"


class TaskKind(StrEnum):
    CREATE = "create"
    APPEND = "append"
    REPLACE = "replace"
    RUN = "run"
    LEARN = "learn"
    MERGE = "merge"
    UNKNOWN = "unknown"


def unescape(text: str) -> str:
    """Turn the mini-language's ``\\n``, ``\\t`` and ``\\\\`` escapes into characters."""
    return re.sub(r"\\([nt\\])", lambda m: _ESCAPES[m.group(1)], text)


@dataclass(frozen=True)
class TaskAction:
    """What a task asks for. `path` is relative to the working directory."""

    kind: TaskKind
    path: str | None = None
    content: str = ""  # create: file content; append: text; learn: the fact; run: command
    old: str = ""  # replace only
    new: str = ""  # replace only

    @property
    def files(self) -> tuple[str, ...]:
        """The files this action changes (what gets `git add`-ed)."""
        if self.kind is TaskKind.LEARN:
            return (LEARNINGS_PATH,)
        return (self.path,) if self.path else ()


def parse_action(text: str) -> TaskAction:
    """The action a task's text asks for; `TaskKind.UNKNOWN` if not in the language."""
    action = _parse_at_start(text)
    if action.kind is TaskKind.UNKNOWN and (quoted := _QUOTED_VERB.search(text)):
        return _parse_at_start(text[quoted.end():])
    return action


def _parse_at_start(text: str) -> TaskAction:
    for kind, pattern in _FORMS:
        match = pattern.match(text.strip())
        if not match:
            continue
        args = match.groups()
        match kind:
            case "create":
                content = unescape(args[1])
                if not content.endswith("\n"):
                    content += "\n"
                return TaskAction(TaskKind.CREATE, path=args[0], content=content)
            case "append":
                return TaskAction(TaskKind.APPEND, path=args[1], content=unescape(args[0]))
            case "replace":
                return TaskAction(
                    TaskKind.REPLACE, path=args[2], old=unescape(args[0]), new=unescape(args[1])
                )
            case "run":
                return TaskAction(TaskKind.RUN, content=unescape(args[0]))
            case "learn":
                return TaskAction(TaskKind.LEARN, content=unescape(args[0]))
            case "merge":
                return TaskAction(TaskKind.MERGE, content=unescape(args[0]))
    return TaskAction(TaskKind.UNKNOWN)


@dataclass(frozen=True)
class SpecTask:
    """One checkbox line of SPEC.md."""

    line: str  # the full line, as it must appear in an Edit's old_string
    text: str
    checked: bool

    @property
    def action(self) -> TaskAction:
        return parse_action(self.text)

    @property
    def checked_line(self) -> str:
        return self.line.replace("[ ]", "[x]", 1)


def parse_spec(text: str) -> list[SpecTask]:
    """Every checkbox task of a SPEC.md, in order."""
    tasks = []
    for line in text.splitlines():
        if match := _TASK_RE.match(line):
            tasks.append(
                SpecTask(line=line, text=match.group("text"), checked=match.group("mark") != " ")
            )
    return tasks


def first_unchecked(tasks: list[SpecTask]) -> SpecTask | None:
    return next((t for t in tasks if not t.checked), None)
