"""What intake says on an issue, and how it knows it already said it.

Every comment intake writes ends with a marker, an HTML comment GitHub does not
show: ``<!-- ai-factory:<kind> key=value ... -->``. Before writing, intake
reads the issue's comments *by its own login* and skips a comment whose marker
is already there. The issue thread is thus the durable record of what was said:
it survives restarts, needs no table (so `factory intake` in its own process
works the same), and a failed label change followed by a retry never posts
twice. Kinds and keys:

- ``untrusted event=<label event id>``: the label came from someone without write access;
- ``edited event=<id>`` (and ``item=<id>`` once an item exists): the issue's text was
  edited after that label by someone without write access; a comment that cancels the
  item also carries that item's ``report`` marker, so no second comment reports it;
- ``no-tasks event=<id>``: the issue yielded no task;
- ``picked-up event=<id> item=<work item id>``: a work item exists for this labelling;
- ``report item=<id> status=<status> at=<ms>``: the final (or stuck) report.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from ai_factory.core.logging import scrub
from ai_factory.core.models import WorkItem, WorkItemStatus
from ai_factory.intake.models import Comment
from ai_factory.intake.spec_gen import Spec

_MARKER = re.compile(r"<!-- ai-factory:(?P<kind>[a-z-]+)(?P<attrs>(?: [a-z_]+=[^\s<>]+)*) -->")
SIGNATURE = "**AI Factory**"
MAX_ERROR_CHARS = 1500


@dataclass(frozen=True)
class Marker:
    kind: str
    attrs: dict[str, str] = field(default_factory=dict)


def marker(kind: str, **attrs: object) -> str:
    pairs = "".join(f" {key}={value}" for key, value in attrs.items())
    return f"<!-- ai-factory:{kind}{pairs} -->"


def markers(comments: Iterable[Comment], *, author: str | None) -> list[Marker]:
    """Markers in comments written by `author` (every author when it is unknown)."""
    found = []
    for comment in comments:
        if author is not None and comment.author.lower() != author.lower():
            continue
        for match in _MARKER.finditer(comment.body):
            attrs = dict(pair.split("=", 1) for pair in match.group("attrs").split())
            found.append(Marker(match.group("kind"), attrs))
    return found


def has_marker(found: Iterable[Marker], kind: str, **attrs: object) -> bool:
    wanted = {key: str(value) for key, value in attrs.items()}
    return any(
        m.kind == kind and all(m.attrs.get(k) == v for k, v in wanted.items()) for m in found
    )


def report_key(item: WorkItem) -> dict[str, object]:
    """What makes a report unique: the item and the transition it reports (a retried item
    that fails again is reported again; `updated_at` changes at every transition)."""
    return {
        "item": item.id,
        "status": item.status.value,
        "at": int(item.updated_at.timestamp() * 1000),
    }


def _fenced(text: str, info: str = "") -> str:
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{info}\n{text.rstrip()}\n{fence}"


def _error_text(text: str | None) -> str:
    cleaned = scrub((text or "no reason recorded").strip())
    if len(cleaned) > MAX_ERROR_CHARS:
        cleaned = cleaned[:MAX_ERROR_CHARS] + " [...]"
    return _fenced(cleaned)


def untrusted(*, label: str, actor: str | None, event_id: int) -> str:
    who = f"`{actor}`" if actor else "someone the factory could not identify"
    return (
        f"{SIGNATURE} did not pick up this issue: the `{label}` label was added by {who}, who does"
        " not have write access to this repository. Only people with write, maintain or admin"
        " permission (and the bots listed in TRUSTED_BOTS) can send issues to the factory.\n\n"
        f"I removed the label. A maintainer can add it again to start the work.\n\n"
        + marker("untrusted", event=event_id)
    )


_EDITS_THAT_COUNT = (
    "Only edits by people with write, maintain or admin permission (and by the bots listed in"
    " TRUSTED_BOTS) count"
)


def _who(editors: Iterable[str | None]) -> str:
    names = list(dict.fromkeys(f"`{e}`" if e else "someone GitHub does not name" for e in editors))
    return ", ".join(names[:-1]) + f" and {names[-1]}" if len(names) > 1 else names[0]


def edited(*, label: str, labeller: str, editors: Iterable[str | None], event_id: int) -> str:
    """Edited after a trusted label, before intake read it: nothing is queued."""
    return (
        f"{SIGNATURE} did not pick up this issue: it was edited by {_who(editors)} after"
        f" `{labeller}` added the `{label}` label. {_EDITS_THAT_COUNT}, so nobody who may send"
        " work to the factory has seen the issue as it is now.\n\n"
        "I removed the label. A maintainer can add it again after reviewing the edit; the issue"
        " as it is then is what gets built.\n\n" + marker("edited", event=event_id)
    )


def edited_while_active(
    *, label: str, editors: Iterable[str | None], event_id: int, item: WorkItem, cancelled: bool
) -> str:
    """Edited after its item was queued: the item is cancelled if no worker had it yet."""
    who = _who(editors)
    if cancelled:
        return (
            f"{SIGNATURE} cancelled work item `{item.id}` before any worker started on it: this"
            f" issue was edited by {who} after it was labelled. {_EDITS_THAT_COUNT}.\n\n"
            f"A maintainer can add the `{label}` label again after reviewing the edit; the issue"
            " as it is then is what gets built.\n\n"
            + marker("edited", event=event_id, item=item.id)
            + "\n"
            + marker("report", **report_key(item))
        )
    return (
        f"{SIGNATURE} is not using the edit {who} made to this issue after it was labelled: work"
        f" item `{item.id}` ({item.status.value}) keeps the text as it was then."
        f" {_EDITS_THAT_COUNT}; other edits never reach a worker.\n\n"
        + marker("edited", event=event_id, item=item.id)
    )


def no_tasks(*, event_id: int, source: str) -> str:
    where = "the issue's task list" if source == "issue" else "the spec written from this issue"
    return (
        f"{SIGNATURE} did not queue this issue: {where} has no open task (`- [ ] ...`), so there"
        " is nothing for a worker to do.\n\n"
        "Describe the change as concrete steps, or write the task list yourself as a checkbox"
        " list in the issue body, then add the label again.\n\n"
        + marker("no-tasks", event=event_id)
    )


def picked_up(*, item: WorkItem, spec: Spec, event_id: int) -> str:
    source = (
        "the issue's own task list" if spec.source == "issue" else "a spec written from the issue"
    )
    tasks = f"{spec.tasks} task{'s' if spec.tasks != 1 else ''}"
    return (
        f"{SIGNATURE} picked up this issue: work item `{item.id}` is queued with priority"
        f" **{item.priority.value}**, {tasks} from {source}. I will comment here again when it is"
        " done.\n\n"
        f"<details>\n<summary>SPEC.md ({tasks})</summary>\n\n"
        f"{_fenced(spec.text, 'markdown')}\n\n</details>\n\n"
        + marker("picked-up", event=event_id, item=item.id)
    )


def already_active(*, item: WorkItem, event_id: int, retried: bool) -> str:
    if retried:
        text = (
            f"{SIGNATURE} is trying this issue again: work item `{item.id}` was stuck and is"
            " queued again."
        )
    else:
        text = (
            f"{SIGNATURE} is already on this issue: work item `{item.id}` is {item.status.value}."
        )
    return f"{text}\n\n" + marker("picked-up", event=event_id, item=item.id)


def _usage(item: WorkItem) -> str:
    return (
        "| iterations | tokens | cost |\n|---:|---:|---:|\n"
        f"| {item.iterations} | {item.tokens:,} | ${item.cost_usd:.2f} |"
    )


def report(item: WorkItem, *, intake_label: str) -> str:
    """The comment for an item that finished, failed, got stuck or was cancelled."""
    key = marker("report", **report_key(item))
    match item.status:
        case WorkItemStatus.COMPLETED:
            return (
                f"{SIGNATURE} finished this issue:"
                f" {item.pr_url or '(no pull request recorded)'}\n\n{_usage(item)}\n\n{key}"
            )
        case WorkItemStatus.STUCK:
            lead = f"{SIGNATURE} is stuck on this issue and stopped."
        case WorkItemStatus.CANCELLED:
            return (
                f"{SIGNATURE} stopped: work item `{item.id}` was cancelled"
                f" ({item.status_reason or 'no reason recorded'}).\n\n{key}"
            )
        case _:
            lead = f"{SIGNATURE} could not finish this issue."
    partial = f"\n\nPull request with the work so far: {item.pr_url}" if item.pr_url else ""
    attempts = f"{item.attempts} attempt{'s' if item.attempts != 1 else ''}"
    return (
        f"{lead} The reason:\n\n{_error_text(item.error or item.status_reason)}\n\n"
        f"What was done ({attempts}):\n\n{_usage(item)}{partial}\n\n"
        f"The factory's record of it: `factory show {item.id}`. Add the `{intake_label}` label"
        f" again to retry.\n\n{key}"
    )
