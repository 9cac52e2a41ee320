"""How one worker run ends, once the loop has returned: deliver or save, then report once.

Owns what follows `RalphLoop.run()`, by outcome:

- done: commit what the agent left uncommitted, deliver (push, pull request on
  GitHub), report complete with the PR url, iterations, tokens, cost, files
  changed and new learnings;
- stuck / failed: commit what exists as WIP, push it, report stuck / fail with
  what is done and what is left, so no work is lost.

The worktree is removed before the final report (its branch stays in the
mirror and on the remote), so a retry that starts at once never finds it half
removed. It returns the process exit codes (`exits`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from ai_factory.core.errors import ApiUnreachableError, FactoryError
from ai_factory.core.models import (
    WorkerCompleteRequest,
    WorkerFailRequest,
    WorkerPhase,
    WorkerStuckRequest,
    WorkItem,
)
from ai_factory.core.spec import SPEC_FILE
from ai_factory.worker.client import Heartbeat, LeaseLostError, OrchestratorClient
from ai_factory.worker.exits import (  # noqa: F401 - still importable from here
    EXIT_COMPLETED,
    EXIT_FAILED,
    EXIT_STOPPED,
    EXIT_STUCK,
    EXIT_UNREGISTERED,
)
from ai_factory.worker.learnings import collect_new_learnings
from ai_factory.worker.loop import LoopOutcome, LoopResult
from ai_factory.worker.workspace import Workspace

log = logging.getLogger(__name__)


class Ending:
    """The end of one item's run: what is pushed, and the one final report."""

    def __init__(
        self,
        *,
        item: WorkItem,
        client: OrchestratorClient,
        heartbeat: Heartbeat,
        github_token: str | None,
        github_api_url: str,
    ) -> None:
        self.item = item
        self.client = client
        self.heartbeat = heartbeat
        self.github_token = github_token
        self.github_api_url = github_api_url

    async def finish(self, workspace: Workspace, result: LoopResult) -> int:
        new_learnings = collect_new_learnings(workspace.path)
        await self.client.flush(timeout_s=5)  # the last iteration's report before the phase change
        if self.client.lease_lost.is_set():  # cancelled or reassigned meanwhile: push nothing
            log.warning("worker.stopped reason=lease_lost (nothing pushed, nothing reported)")
            return EXIT_STOPPED
        self.heartbeat.set_phase(WorkerPhase.DELIVERING, f"{result.outcome.value}: delivering")
        if result.outcome is LoopOutcome.DONE:
            try:
                pr_url, files = await asyncio.to_thread(self._deliver, workspace, result)
            except FactoryError as exc:
                return await self.fail(f"delivery failed: {exc}", result.iterations, workspace)
            await self.remove(workspace)
            log.info("worker.delivered location=%s iterations=%s tokens=%s cost_usd=%.4f",
                     pr_url, result.iterations, result.tokens, result.cost_usd)  # fmt: skip
            await self.client.complete(
                WorkerCompleteRequest(
                    pr_url=pr_url,
                    iterations=result.iterations,
                    tokens=result.tokens,
                    files_changed=files,
                    new_learnings=new_learnings,
                    cost_usd=round(result.cost_usd, 6),
                )
            )
            return EXIT_COMPLETED
        saved = await self._save_wip(workspace, result)
        reason = f"{result.reason}\n{saved}".strip()
        await self.remove(workspace)
        if result.outcome is LoopOutcome.STUCK:
            self.heartbeat.set_phase(WorkerPhase.STUCK, result.reason[:500])
            await self.client.stuck(
                WorkerStuckRequest(reason=reason[:20000], attempts=result.iterations)
            )
            return EXIT_STUCK
        await self.client.fail(WorkerFailRequest(error=reason[:20000], iteration=result.iterations))
        return EXIT_FAILED

    def _deliver(self, workspace: Workspace, result: LoopResult) -> tuple[str, list[str]]:
        """Commit leftovers, push, open the PR: its url and the files the branch changed."""
        from ai_factory.worker.delivery import DeliverySummary, deliver  # githubkit: import on use

        if workspace.has_uncommitted_changes():
            workspace.commit_wip(
                "chore: changes the agent left uncommitted\n\nCommitted by AI Factory."
            )
        spec = workspace.read_file(SPEC_FILE) or ""
        files = workspace.changed_files()
        gate = result.gate.describe() if result.gate is not None else "no quality gate configured"
        summary = DeliverySummary(
            iterations=result.iterations,
            tokens=result.tokens,
            cost_usd=result.cost_usd,
            checked_spec=spec,
            summary=(
                f"Implemented by AI Factory in {result.iterations} iteration(s): "
                f"{result.tasks.summary()}; {gate}."
            ),
            tasks_done=len(result.tasks.done),
            tasks_total=result.tasks.total,
            files_changed=files,
        )
        url = deliver(workspace, self.item, summary, github_token=self.github_token,
                      github_api_url=self.github_api_url)  # fmt: skip
        return url, files

    async def _save_wip(self, workspace: Workspace, result: LoopResult) -> str:
        """Commit what exists as WIP and push the branch; say where it is."""
        message = (
            f"wip: AI Factory stopped before finishing ({result.outcome.value})\n\n"
            f"{result.reason[:3000]}\n\n{result.tasks.summary(limit=50)}\n"
        )

        def save() -> str:
            workspace.commit_wip(message)
            if self.item.is_followup:
                # Never unfinished work on the pull request itself: beside it.
                if not workspace.item_commits():
                    return "No commits were made."
                side = f"{workspace.branch}-wip-{str(self.item.id)[:8]}"
                workspace.push(to_branch=side)
                return f"Work so far is on branch {side} of {workspace.repo}."
            if not workspace.commits_since_base():
                return "No commits were made."
            workspace.push()
            return f"Work so far is on branch {workspace.branch} of {workspace.repo}."

        try:
            return await asyncio.to_thread(save)
        except FactoryError as exc:
            log.error("worker.wip_not_pushed error=%s", exc)
            return f"The work so far could not be pushed ({exc}); it is on {workspace.branch} in the mirror."

    async def remove(self, workspace: Workspace) -> None:
        try:
            await asyncio.to_thread(workspace.remove)
        except FactoryError as exc:
            log.warning("workspace.not_removed path=%s error=%s", workspace.path, exc)

    async def fail(self, error: str, iteration: int, workspace: Workspace | None = None) -> int:
        """Report the item failed (removing the worktree first); EXIT_FAILED."""
        log.error("worker.failed error=%s", error)
        if workspace is not None:
            await self.remove(workspace)
        with contextlib.suppress(LeaseLostError, ApiUnreachableError):
            await self.client.fail(WorkerFailRequest(error=error[:20000], iteration=iteration))
        return EXIT_FAILED
