"""File locks around Claude's edits: a PreToolUse hook that asks the orchestrator first.

Owns: `FileLocks`, the locks this worker holds (repo-relative paths), and the
Claude Code hook that asks for a lock before Edit / Write / MultiEdit /
NotebookEdit touches a file. When another worker holds the file, the tool call
is denied with a reason Claude can act on; the orchestrator records the
conflict in the item's events.

Choices:
- SPEC.md and `.ai/` are the worker's own files (never committed): no lock.
  Files outside the workspace are not the repository's: no lock either.
- A lock is asked for once per file and kept until the worker ends; the
  orchestrator renews locks with heartbeats and frees them on complete / fail /
  stuck, and `release_all` frees them explicitly at the end.
- When the orchestrator cannot be reached in a few seconds the edit is
  allowed (locks are advisory coordination, not a safety boundary; stopping
  all work during an orchestrator restart would be worse), and the lock is
  asked for again on the next edit of that file.
- Edits made through Bash (sed -i, redirections) do not pass through the hook;
  the protocol asks Claude to use the edit tools.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ai_factory.core.errors import FactoryError
from ai_factory.core.spec import SPEC_FILE
from ai_factory.worker.agent.tools import EDIT_TOOLS, edited_path, repo_relative
from ai_factory.worker.client import LeaseLostError, OrchestratorClient
from ai_factory.worker.workspace import AI_DIR

if TYPE_CHECKING:
    from claude_agent_sdk import HookMatcher

log = logging.getLogger(__name__)

EXEMPT_FILES = frozenset({SPEC_FILE})
EXEMPT_DIRS = (f"{AI_DIR}/",)


@dataclass(frozen=True)
class LockVerdict:
    allowed: bool
    reason: str = ""


def conflict_reason(path: str) -> str:
    return (
        f"{path} is being edited by another worker; do other tasks first or wait "
        "(do not change this file by other means, e.g. Bash)."
    )


class FileLocks:
    def __init__(self, *, client: OrchestratorClient, root: Path) -> None:
        self.client = client
        self.root = root
        self.held: set[str] = set()
        self.conflicts: list[str] = []  # files denied since the last `take_conflicts`

    def needs_lock(self, path: str) -> bool:
        return not (
            path in EXEMPT_FILES
            or path.startswith(EXEMPT_DIRS)
            or path.startswith("../")
            or Path(path).is_absolute()
        )

    async def acquire(self, path: str) -> LockVerdict:
        """Lock one repo-relative file for this worker (see the module doc for the rules)."""
        if not self.needs_lock(path) or path in self.held:
            return LockVerdict(True)
        try:
            result = await self.client.lock([path])
        except LeaseLostError:
            return LockVerdict(False, "this worker has been stopped by the factory; stop working.")
        except FactoryError as exc:  # the orchestrator refused the request itself (e.g. 422)
            log.warning("lock.refused file=%s error=%s (edit allowed)", path, exc)
            return LockVerdict(True)
        if result is None:
            log.warning("lock.unavailable file=%s (orchestrator unreachable; edit allowed)", path)
            return LockVerdict(True)
        if path in result.conflicts:
            self.conflicts.append(path)
            log.warning("lock.conflict file=%s (held by another worker; edit denied)", path)
            return LockVerdict(False, conflict_reason(path))
        self.held.update(result.acquired)
        log.info("lock.acquired file=%s", path)
        return LockVerdict(True)

    async def release_all(self) -> None:
        if self.held:
            await self.client.unlock(sorted(self.held))
            log.info("lock.released files=%s", len(self.held))
            self.held.clear()

    def take_conflicts(self) -> list[str]:
        conflicts, self.conflicts = list(dict.fromkeys(self.conflicts)), []
        return conflicts

    # --- the Claude Code hook ---

    def claude_hooks(self) -> dict[str, list[HookMatcher]]:
        """`ClaudeAgentOptions.hooks` value: the PreToolUse lock check on edit tools."""
        from claude_agent_sdk import HookMatcher  # the SDK loads only with the Claude driver

        matcher = "|".join(sorted(EDIT_TOOLS))
        return {"PreToolUse": [HookMatcher(matcher=matcher, hooks=[self._pre_tool_use])]}

    async def _pre_tool_use(
        self, hook_input: Any, tool_use_id: str | None, context: Any
    ) -> dict[str, Any]:
        if hook_input.get("tool_name") not in EDIT_TOOLS:
            return {}
        path = edited_path(hook_input.get("tool_input") or {})
        if path is None:
            return {}
        verdict = await self.acquire(repo_relative(path, self.root))
        if verdict.allowed:
            return {}
        return {
            "hookSpecificOutput": {
                "hookEventName": "PreToolUse",
                "permissionDecision": "deny",
                "permissionDecisionReason": verdict.reason,
            }
        }
