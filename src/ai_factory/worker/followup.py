"""Follow-up work on the factory's own pull request: the merge before, the answers after.

A follow-up item (review feedback, a failing check, a merge conflict) runs the same loop
on its pull request's existing branch (`Workspace.prepare` checks it out; nothing is
rebased or force-pushed). Two steps are its own:

- a `conflict` follow-up first merges the base branch into the branch (`merge_base_in`).
  A clean merge is committed at once with ``Factory-Task: 1``, so the loop only runs
  the gate; otherwise the merge is left in progress with its conflict markers, for the
  agent to resolve and commit as its task;
- after the push, `answer` replies in each review thread the follow-up acted on with
  the commit that did it (task N of the spec answers the N-th feedback, and the commit
  carrying ``Factory-Task: N`` is the one that did it), and leaves one summary comment
  on the pull request. Hidden markers make both idempotent: a retried delivery finds
  its own replies and posts nothing twice.
"""

from __future__ import annotations

import logging
from typing import Any

from ai_factory.core.models import WorkItem, WorkKind
from ai_factory.worker.branch_progress import trailer_line
from ai_factory.worker.github import GitHubDeliveryClient
from ai_factory.worker.workspace import Workspace

log = logging.getLogger(__name__)

SUMMARY_MARKER = "<!-- ai-factory:followup item={item} -->"
REPLY_MARKER = "<!-- ai-factory:reply item={item} comment={comment} -->"


def merge_base_in(workspace: Workspace, item: WorkItem) -> list[str]:
    """For a conflict follow-up, merge the base branch into the branch; the paths left in
    conflict (empty: merged and committed, or nothing to merge)."""
    if item.kind is not WorkKind.CONFLICT:
        return []
    conflicts = workspace.merge(
        f"refs/remotes/origin/{item.base_branch}",
        message=f"Merge {item.base_branch} into {workspace.branch}",
        trailer=trailer_line(1),
    )
    log.info("followup.merged base=%s conflicts=%s", item.base_branch, conflicts)
    return conflicts


def answer(
    client: GitHubDeliveryClient, owner: str, repo: str, item: WorkItem, workspace: Workspace
) -> None:
    """Reply in each review thread acted on, then one summary comment; each at most once."""
    number = item.pr_number
    if number is None:
        return
    commits = workspace.item_commits()
    by_task = {task: (sha, subject) for sha, subject, tasks in commits for task in tasks}
    feedback: list[dict[str, Any]] = list(item.context.get("feedback") or [])
    replied = {_marked_comment(c.get("body") or "", item) for c in client.review_comments(owner, repo, number)}
    for entry in feedback:
        comment = entry.get("replyTo")
        task = int(entry.get("task") or 0)
        if not isinstance(comment, int) or comment in replied or task not in by_task:
            continue
        sha, subject = by_task[task]
        body = (f"Done in {sha[:12]}: {subject}\n\n"
                f"{REPLY_MARKER.format(item=item.id, comment=comment)}")  # fmt: skip
        client.reply(owner, repo, number, comment, body)
        log.info("followup.replied pull=%s comment=%s commit=%s", number, comment, sha[:12])
    marker = SUMMARY_MARKER.format(item=item.id)
    if any(marker in (c.get("body") or "") for c in client.issue_comments(owner, repo, number)):
        return
    lines = [f"AI Factory pushed {len(commits)} commit(s) for this {_what(item)}:", ""]
    lines += [f"- {sha[:12]} {subject}" for sha, subject, _tasks in commits]
    lines += ["", marker]
    client.comment(owner, repo, number, "\n".join(lines))


def _what(item: WorkItem) -> str:
    return {
        WorkKind.REVIEW: "review feedback",
        WorkKind.CI_FIX: "failing check",
        WorkKind.CONFLICT: "merge with the base branch",
    }.get(item.kind, "follow-up")


def _marked_comment(body: str, item: WorkItem) -> int | None:
    """The review comment an earlier reply of this item answered (from its marker)."""
    prefix = f"<!-- ai-factory:reply item={item.id} comment="
    start = body.find(prefix)
    if start < 0:
        return None
    digits = body[start + len(prefix):].split(" ", 1)[0]
    return int(digits) if digits.isdigit() else None
