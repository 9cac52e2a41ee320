"""The scripted model as intake's spec generator.

Owns: recognising a spec-generation request (its system prompt says it converts
GitHub issues into SPEC.md files, as intake's `spec_gen.SYSTEM_PROMPT` does) and
answering it the way a model would, from the issue text alone: every line of the
issue body that reads as a task in the sim's task language (`tasks`), with any
bullet, number or checkbox in front of it, becomes ``- [ ] <task>`` in a fenced
markdown SPEC.md under ``# <title>``. A body with nothing task-like gets a
polite answer with no checkboxes, which intake must treat as "no tasks".

Works for the streaming path (Claude Code) and the non-streaming one (the
``anthropic`` SDK) alike: both go through `agent.auxiliary_reply`.
"""

from __future__ import annotations

import re
from typing import Any

from ai_factory.sim.conversation import Conversation
from ai_factory.sim.tasks import TaskKind, parse_action
from ai_factory.sim.wire import Reply

SPEC_GENERATOR_MARKER = "convert github issues into spec.md"
_LEAD = re.compile(r"^\s*(?:[-*+]\s+)?(?:\d+[.)]\s+)?(?:\[[ xX]\]\s+)?")
_TITLE = re.compile(r"^\s*Title:\s*(.+?)\s*$", re.MULTILINE)
_BODY = re.compile(r"^\s*Body:\s*$", re.MULTILINE)


def _system_text(request: dict[str, Any]) -> str:
    system = request.get("system")
    if isinstance(system, str):
        return system
    blocks = system if isinstance(system, list) else []
    return "\n".join(str(b.get("text", "")) for b in blocks if isinstance(b, dict))


def is_spec_request(conv: Conversation) -> bool:
    return SPEC_GENERATOR_MARKER in _system_text(conv.request).lower()


def spec_reply(conv: Conversation) -> Reply:
    prompt = conv.prompt
    title_match = _TITLE.search(prompt)
    title = title_match.group(1) if title_match else "Feature"
    body_match = _BODY.search(prompt)
    body = prompt[body_match.end() :] if body_match else prompt
    tasks = []
    for line in body.splitlines():
        text = _LEAD.sub("", line, count=1).strip()
        if text and parse_action(text).kind is not TaskKind.UNKNOWN:
            tasks.append(f"- [ ] {text}")
    if not tasks:
        return Reply.text(
            "I could not find any concrete, testable work in this issue, so there is no"
            " task list to write. Could the author say what should change?"
        )
    spec = "\n".join([f"# {title}", "", "## Tasks", *tasks])
    return Reply.text(f"Here is the SPEC.md:\n\n```markdown\n{spec}\n```")
