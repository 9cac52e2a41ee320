"""The scripted model: decides the next assistant turn from the conversation alone.

Owns: the agent protocol the simulated model follows. It is stateless and never
looks at the filesystem; each request is answered from the messages it carries:

1. Read ``SPEC.md`` (the absolute path under the working directory Claude Code
   announces in its prompt).
2. Take the first unchecked task (``- [ ] ...``; language in `tasks`) and plan
   its tool calls: a file is Read before it is written (the Read may fail when
   the file is new), Replace uses Edit.
3. Commit with Bash: ``git add -- <files> && git commit -m "feat: <task>"``
   (``git add -A`` and ``--allow-empty`` for Run tasks; Learn tasks make no
   commit, the worker collects ``.ai/new-learnings.md``).
4. Check the box with Edit (``- [ ]`` -> ``- [x]`` on that line of SPEC.md).
5. End the turn with a one-line summary. One task per conversation.

The number of tool calls already in the conversation says which planned step
comes next. A tool error on a step that must succeed ends the turn with a
report and no box checked. With no unchecked task left it says so and stops.
A task outside the language is not attempted: the agent writes
``.ai/stuck.md`` explaining which task it does not understand and stops.

Requests that are not the main agent loop (no Bash/Read/Write/Edit tools: the
CLI's titles, summaries and other side calls) get a short text answer, except
intake's spec-generation requests, which get a SPEC.md (see `specgen`).

Scenarios change the protocol (see `scenario` for the list):

- ``stuck``: after step 1 it ends the turn saying it is still thinking.
- ``stuck_file``: after step 1 it writes ``.ai/stuck.md`` naming the task and stops.
- ``gate``: a Create task is first written with a ``BUG`` first line. When the
  prompt contains "Quality gate failed" (any case), the agent instead repairs:
  the Create task whose path appears after that marker, else the last checked one,
  else the first unchecked one. A checked task gets Read + Write of the correct
  content and a ``fix: <task>`` commit; an unchecked one is done the normal
  way with the correct content.
"""

from __future__ import annotations

import posixpath
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ai_factory.sim.conversation import Conversation, ToolStep, read_output_text
from ai_factory.sim.scenario import ScenarioName
from ai_factory.sim.specgen import is_spec_request, spec_reply
from ai_factory.sim.tasks import (
    LEARNINGS_PATH,
    SpecTask,
    TaskAction,
    TaskKind,
    first_unchecked,
    parse_spec,
)
from ai_factory.sim.wire import Reply

SPEC_FILE = "SPEC.md"
_TASK_NUMBER = re.compile(r"The first unchecked task is task (\d+):")
STUCK_FILE = ".ai/stuck.md"
GATE_FAILURE_MARKER = "quality gate failed"
BUG_LINE = "BUG  # deliberately broken first attempt (sim gate scenario)\n"

InputBuilder = Callable[[list[ToolStep]], dict[str, Any]]


@dataclass(frozen=True)
class Step:
    """One planned tool call. `build` sees the steps done so far (after the spec Read)."""

    tool: str
    build: InputBuilder
    say: str = ""
    may_fail: bool = False


@dataclass(frozen=True)
class Plan:
    steps: list[Step]
    summary: str


def _fixed(tool_input: dict[str, Any]) -> InputBuilder:
    return lambda _done: tool_input


class ScriptedAgent:
    """Plays the model for one request of the main agent loop."""

    def __init__(self, scenario: ScenarioName) -> None:
        self.scenario = scenario

    def reply(self, conv: Conversation) -> Reply:
        if not conv.is_main_agent:
            return auxiliary_reply(conv)
        cwd = conv.cwd or "."
        spec_path = posixpath.join(cwd, SPEC_FILE)
        if not conv.steps:
            return Reply.tool("Read", {"file_path": spec_path}, say="Let me read the spec first.")
        spec_read, *done = conv.steps
        if spec_read.name != "Read" or spec_read.result is None:
            return Reply.text(f"I did not get {SPEC_FILE} back from the Read tool; stopping.")
        if spec_read.is_error:
            return Reply.text(
                f"I could not read {SPEC_FILE}: {spec_read.result.strip()}. Nothing to do."
            )
        tasks = parse_spec(read_output_text(spec_read.result))
        plan = self._plan(tasks, prompt=conv.prompt, cwd=cwd)
        for index, taken in enumerate(done):
            planned = plan.steps[index] if index < len(plan.steps) else None
            if planned is None or planned.tool != taken.name:
                return Reply.text("I lost track of my plan in this conversation; stopping here.")
            if taken.is_error and not planned.may_fail:
                detail = (taken.result or "").strip().splitlines()[:3]
                return Reply.text(
                    f"The {taken.name} step failed ({' / '.join(detail)}). "
                    "I am stopping without checking the task off."
                )
        if len(done) < len(plan.steps):
            step = plan.steps[len(done)]
            return Reply.tool(step.tool, step.build(done), say=step.say)
        return Reply.text(plan.summary)

    # --- planning -------------------------------------------------------

    def _plan(self, tasks: list[SpecTask], *, prompt: str, cwd: str) -> Plan:
        task = first_unchecked(tasks)
        fixing = self.scenario is ScenarioName.GATE and GATE_FAILURE_MARKER in prompt.lower()
        if fixing:
            target = _gate_target(tasks, prompt) or task
            if target is not None and target.checked:
                return self._fix_plan(target, cwd)
            task = target
        if task is None:
            return Plan(
                [], f"All tasks in {SPEC_FILE} are already checked off; nothing left to do."
            )
        if self.scenario is ScenarioName.STUCK:
            return Plan([], f"I am still thinking about how to approach: {task.text}")
        if self.scenario is ScenarioName.STUCK_FILE:
            why = f"# Stuck\n\nI cannot make progress on: {task.text}\n(sim scenario stuck_file)\n"
            return Plan(
                _write_steps(cwd, STUCK_FILE, lambda _old: why),
                f"I am stuck on '{task.text}' and explained why in {STUCK_FILE}.",
            )
        action = task.action
        if action.kind is TaskKind.UNKNOWN:
            why = (
                f"# Stuck\n\nI do not understand this task: {task.text}\n"
                "It is not in the task language (Create, Append, Replace, Run, Learn).\n"
            )
            return Plan(
                _write_steps(cwd, STUCK_FILE, lambda _old: why),
                f"I do not understand '{task.text}'; I wrote {STUCK_FILE} and stopped.",
            )
        broken = self.scenario is ScenarioName.GATE and not fixing
        steps = _implement(action, cwd, broken=broken)
        number = _task_number(prompt, tasks, task)
        steps.append(_commit_step(action, f"feat: {task.text}", trailer=f"Factory-Task: {number}"))
        steps.append(_check_box_step(task, posixpath.join(cwd, SPEC_FILE)))
        return Plan(steps, f"Done: {task.text}. Committed and checked it off in {SPEC_FILE}.")

    def _fix_plan(self, task: SpecTask, cwd: str) -> Plan:
        steps = _implement(task.action, cwd, broken=False)
        steps.append(_commit_step(task.action, f"fix: {task.text}", if_changed=True))
        return Plan(steps, f"Fixed the quality gate failure in: {task.text}.")


def _task_number(prompt: str, tasks: list[SpecTask], task: SpecTask) -> int:
    """The task's number as the prompt gives it (the protocol's trailer), else its place."""
    if found := _TASK_NUMBER.search(prompt):
        return int(found.group(1))
    return tasks.index(task) + 1


def auxiliary_reply(conv: Conversation) -> Reply:
    """A short answer for the CLI's side requests (titles, summaries, checks).

    A spec-generation request (intake's) gets a spec, see `specgen`.
    """
    if is_spec_request(conv):
        return spec_reply(conv)
    output_config = conv.request.get("output_config") or {}
    if isinstance(output_config, dict) and isinstance(output_config.get("format"), dict):
        return Reply.text('{"title": "Scripted task", "isNewTopic": false}')
    return Reply.text("Scripted task")


def _gate_target(tasks: list[SpecTask], prompt: str) -> SpecTask | None:
    """The Create task a gate failure points at: named by its path, else the last checked.

    Only the text after the failure marker counts, so a prompt that also quotes
    the spec does not name every task.
    """
    lowered = prompt.lower()
    failure = prompt[lowered.index(GATE_FAILURE_MARKER) :] if GATE_FAILURE_MARKER in lowered else ""
    creates = [t for t in tasks if t.action.kind is TaskKind.CREATE]
    named = [t for t in creates if t.action.path and t.action.path in failure]
    if named:
        return named[-1]
    done = [t for t in creates if t.checked]
    return done[-1] if done else None


def _abs(cwd: str, path: str) -> str:
    return posixpath.normpath(posixpath.join(cwd, path))


def _write_steps(cwd: str, path: str, content: Callable[[str], str]) -> list[Step]:
    """Read (may fail: new file) then Write `content(old_text)`."""
    file_path = _abs(cwd, path)

    def build(done: list[ToolStep]) -> dict[str, Any]:
        read = done[-1]
        old = "" if read.is_error or read.result is None else read_output_text(read.result)
        return {"file_path": file_path, "content": content(old)}

    return [
        Step("Read", _fixed({"file_path": file_path}), say=f"Checking {path}.", may_fail=True),
        Step("Write", build, say=f"Writing {path}."),
    ]


def _appended(text: str) -> Callable[[str], str]:
    def content(old: str) -> str:
        new = text if text.endswith("\n") else text + "\n"
        if old and not old.endswith("\n"):
            old += "\n"
        return old + new

    return content


def _implement(action: TaskAction, cwd: str, *, broken: bool) -> list[Step]:
    match action.kind:
        case TaskKind.CREATE:
            body = BUG_LINE + action.content if broken else action.content
            return _write_steps(cwd, action.path or "", lambda _old: body)
        case TaskKind.APPEND:
            return _write_steps(cwd, action.path or "", _appended(action.content))
        case TaskKind.LEARN:
            return _write_steps(cwd, LEARNINGS_PATH, _appended(f"- {action.content}"))
        case TaskKind.REPLACE:
            file_path = _abs(cwd, action.path or "")
            edit = {"file_path": file_path, "old_string": action.old, "new_string": action.new}
            return [
                Step("Read", _fixed({"file_path": file_path}), say=f"Reading {action.path}."),
                Step("Edit", _fixed(edit)),
            ]
        case TaskKind.RUN:
            bash = {"command": action.content, "description": "Run the task's command"}
            return [Step("Bash", _fixed(bash), say="Running the command.")]
        case TaskKind.MERGE:
            # Keep both sides of every conflict: drop the markers of each unmerged file.
            resolve = (
                "for f in $(git diff --name-only --diff-filter=U); do"
                " sed -i -e '/^<<<<<<< /d' -e '/^=======$/d' -e '/^>>>>>>> /d' \"$f\"; done"
            )
            bash = {"command": resolve, "description": "Resolve the merge conflicts"}
            return [Step("Bash", _fixed(bash), say="Resolving the conflict markers.")]
    return []


def _commit_step(
    action: TaskAction, message: str, *, if_changed: bool = False, trailer: str | None = None
) -> Step:
    """Bash that commits the task's files (`if_changed`: a no-op when nothing changed), the
    message ending with `trailer` (``Factory-Task: N``) when given."""
    messages = ["-m", message, *(["-m", trailer] if trailer else [])]
    commit = shlex.join(["git", "commit", *messages])
    match action.kind:
        case TaskKind.LEARN:
            return Step("Bash", _fixed({"command": "git status --short", "description": "Status"}))
        case TaskKind.RUN | TaskKind.MERGE:
            add = "git add -A"
            commit = shlex.join(["git", "commit", "--allow-empty", *messages])
        case _:
            add = shlex.join(["git", "add", "--", *action.files])
    if if_changed:
        commit = f"{{ git diff --cached --quiet || {commit}; }}"
    bash = {"command": f"{add} && {commit}", "description": "Commit the change"}
    return Step("Bash", _fixed(bash), say="Committing.")


def _check_box_step(task: SpecTask, spec_path: str) -> Step:
    edit = {"file_path": spec_path, "old_string": task.line, "new_string": task.checked_line}
    return Step("Edit", _fixed(edit), say=f"Checking the task off in {SPEC_FILE}.")
