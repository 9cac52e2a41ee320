"""Learnings in and out of a work item.

Owns: fetching the learnings the orchestrator gives for the spec before the loop (its
repository's and the global ones, ranked against the spec, within the factory's token
budget, LEARNINGS_BUDGET_TOKENS; written to `.ai/learnings.md` as a bullet list under
one heading, read-only for the agent) and
collecting the agent's `.ai/new-learnings.md` (one ``- text`` line each) after it,
for the complete report's ``newLearnings``.

The search string is the spec's title and open task lines, trimmed: a whole
spec can be a megabyte, and the beginning of it says what the work is about.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from ai_factory.core.spec import parse_tasks
from ai_factory.worker import agent_files
from ai_factory.worker.client import OrchestratorClient

log = logging.getLogger(__name__)

LEARNINGS_FILE = ".ai/learnings.md"
NEW_LEARNINGS_FILE = ".ai/new-learnings.md"
SEARCH_CHARS = 500
MAX_NEW_LEARNINGS = 50
LEARNING_CHARS = 4096
_BULLET = re.compile(r"^\s*[-*]\s+(?:\[[ xX]\]\s+)?(?P<text>\S.*?)\s*$")


def search_text(spec: str) -> str:
    """A short search string for `spec`: its title, then its open tasks."""
    lines = [ln.strip().lstrip("#").strip() for ln in spec.splitlines() if ln.strip()]
    title = lines[0] if lines else ""
    tasks = parse_tasks(spec)
    text = " ".join([title, *tasks.open, *tasks.done])
    text = " ".join(text.split())
    return text[:SEARCH_CHARS].rsplit(" ", 1)[0] if len(text) > SEARCH_CHARS else text


def render(learnings: list[str]) -> str:
    if not learnings:
        return "# No previous learnings found for this task\n"
    body = "\n".join(f"- {learning}" for learning in learnings)
    return f"# Relevant Learnings from Previous Work\n\n{body}\n"


async def load_learnings(
    client: OrchestratorClient, *, repo: str, spec: str, root: Path
) -> list[str]:
    """Fetch learnings for this spec and write them to .ai/learnings.md."""
    learnings = await client.context_learnings(search=search_text(spec))
    agent_files.write_text(root, LEARNINGS_FILE, render(learnings))  # follows no agent symlink
    log.info("learnings.loaded count=%s repo=%s", len(learnings), repo)
    return learnings


def collect_new_learnings(root: Path) -> list[str]:
    """The agent's new learnings, deduplicated, in order."""
    text = agent_files.read_text(root, NEW_LEARNINGS_FILE)
    if text is None:
        return []
    found: dict[str, None] = {}
    for line in text.splitlines():
        if match := _BULLET.match(line):
            learning = match.group("text")
            if learning.startswith("[") and learning.endswith("]"):  # the protocol's template
                learning = learning[1:-1].strip()
            if learning:
                found[learning[:LEARNING_CHARS]] = None
    learnings = list(found)[:MAX_NEW_LEARNINGS]
    if learnings:
        log.info("learnings.collected count=%s", len(learnings))
    return learnings
