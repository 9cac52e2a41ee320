"""Follow-ups on the factory's own pull requests: review feedback, failing checks, conflicts.

`FollowUpPlanner.check(repo, number)` looks at one pull request (a webhook asked, or the
poll's backstop) and queues at most one follow-up work item for it:

1. Only the factory's own pull requests: the head branch is ``factory/<item id prefix>``
   and that item's result is this pull request. A closed or merged pull request cancels
   its queued follow-ups and nothing more happens.
2. One at a time: while a follow-up is queued or running, feedback that arrives waits
   for the next one (nothing is lost: what a follow-up answered is recorded in its
   `context.feedback`, everything else is still owed). A follow-up that ended stuck or
   failed is reported on the pull request once.
3. At most FOLLOWUP_MAX_ROUNDS follow-ups per pull request; then one comment saying a
   human is needed.
4. What is owed, in this order:
   - review feedback from someone whose word counts (write access, or a bot listed in
     TRUSTED_BOTS; never the factory's own login or its marked comments): a review that
     requests changes (its body and its comments), and any review, review comment or
     comment that mentions FOLLOWUP_HANDLE; threads marked resolved are skipped;
   - a check that failed on the head (the latest run of each name: one that passed on a
     re-run is not owed), unless it fails on the base branch too (said once, and left),
     with its job's log (Actions) or its output as the evidence; at most
     FOLLOWUP_MAX_CI_FIXES fix attempts per pull request, then one comment;
   - a merge conflict with the base branch (`mergeable_state` dirty).
   The follow-up runs the Ralph loop on the pull request's branch (see `worker.followup`).

Every comment carries a marker (`feedback.marker`), so nothing is said twice.
"""

from __future__ import annotations

import logging
from enum import StrEnum

from ai_factory.core.models import (
    ACTIVE_STATUSES,
    CreateWorkItemInput,
    Source,
    WorkItem,
    WorkItemStatus,
    WorkKind,
)
from ai_factory.intake import feedback
from ai_factory.intake import followup_specs as texts
from ai_factory.intake.followup_specs import Feedback
from ai_factory.intake.github import GitHubIntakeClient
from ai_factory.intake.models import PullInfo, RepoInfo
from ai_factory.intake.submitter import Submitter
from ai_factory.intake.trust import TrustGate

log = logging.getLogger(__name__)

BRANCH_PREFIX = "factory/"
FAILED_CONCLUSIONS = frozenset({"failure", "timed_out", "startup_failure"})
ENDED_BADLY = (WorkItemStatus.FAILED, WorkItemStatus.STUCK)


class FollowUp(StrEnum):
    NOT_OURS = "not_ours"
    CLOSED = "closed"
    WAITING = "waiting"  # a follow-up is active
    CAPPED = "capped"
    NOTHING = "nothing"
    QUEUED = "queued"


class FollowUpPlanner:
    def __init__(
        self,
        *,
        github: GitHubIntakeClient,
        submitter: Submitter,
        trust: TrustGate,
        handle: str = "@ai-factory",
        max_rounds: int = 5,
        max_ci_fixes: int = 3,
    ) -> None:
        self.github = github
        self.submitter = submitter
        self.trust = trust
        self.handle = handle.lower()
        self.max_rounds = max_rounds
        self.max_ci_fixes = max_ci_fixes

    async def check(self, repo: RepoInfo, number: int) -> FollowUp:
        pull = await self.github.pull(repo.full_name, number)
        root = await self._root(pull) if pull is not None else None
        if pull is None or root is None:
            return FollowUp.NOT_OURS
        earlier = await self.submitter.pull_followups(repo_url=root.repo, pr_number=number)
        if pull.state != "open":
            if pull.merged:
                await self.submitter.record_merged(str(root.id))
            cancelled = await self.submitter.cancel_followups(
                repo_url=root.repo, pr_number=number,
                reason=f"pull request #{number} was {'merged' if pull.merged else 'closed'}",
            )  # fmt: skip
            log.info("followup.pull_closed repo=%s pull=%s cancelled=%s", repo.full_name, number,
                     cancelled.id if cancelled else None)  # fmt: skip
            return FollowUp.CLOSED
        said = feedback.markers(await self.github.comments(repo.full_name, number),
                                author=await self.github.login())  # fmt: skip
        await self._report_ended(repo, number, earlier, said)
        if any(item.status in ACTIVE_STATUSES for item in earlier):
            return FollowUp.WAITING
        counted = [item for item in earlier if item.status is not WorkItemStatus.CANCELLED]
        if len(counted) >= self.max_rounds:
            if not feedback.has_marker(said, "rounds-cap", pull=number):
                await self.github.comment(
                    repo.full_name, number, texts.human_needed(pull_number=number, rounds=len(counted))
                )
            return FollowUp.CAPPED
        handled = {str(entry.get("id")) for item in counted
                   for entry in item.context.get("feedback") or []}  # fmt: skip
        kind, owed = WorkKind.REVIEW, await self._review(repo, pull, handled)
        if not owed:
            kind, owed = WorkKind.CI_FIX, await self._checks(repo, pull, handled, counted, said)
        if not owed:
            kind, owed = WorkKind.CONFLICT, self._conflict(pull, handled)
        if not owed:
            return FollowUp.NOTHING
        await self._queue(root, pull, kind, owed)
        return FollowUp.QUEUED

    # --- whose pull request ---

    async def _root(self, pull: PullInfo) -> WorkItem | None:
        """The item whose result this pull request is (its branch names it)."""
        if not pull.head_ref.startswith(BRANCH_PREFIX):
            return None
        prefix = pull.head_ref.removeprefix(BRANCH_PREFIX)
        if len(prefix) < 6 or any(ch not in "0123456789abcdef" for ch in prefix):
            return None
        root = await self.submitter.item(prefix)
        if root is None or root.is_followup or (root.pr_url or "").rstrip("/") != pull.html_url.rstrip("/"):
            return None
        return root

    # --- what is owed ---

    async def _review(self, repo: RepoInfo, pull: PullInfo, handled: set[str]) -> list[Feedback]:
        me = (await self.github.login() or "").lower()
        full, number = repo.full_name, pull.number
        reviews = await self.github.reviews(full, number)
        comments = await self.github.review_comments(full, number)
        issue_comments = await self.github.comments(full, number)
        verdicts: dict[str, bool] = {}

        async def counts(login: str, is_bot: bool, body: str) -> bool:
            if not login or login.lower() == me or "<!-- ai-factory:" in body:
                return False
            if login.lower() not in verdicts:
                verdicts[login.lower()] = (await self.trust.actor(repo, login, is_bot=is_bot)).trusted
            return verdicts[login.lower()]

        owed: list[Feedback] = []
        asking = {r.id for r in reviews if r.state == "CHANGES_REQUESTED"}
        for review in reviews:
            wanted = review.id in asking or self._mentions(review.body)
            if wanted and review.body.strip() and await counts(review.author, review.author_is_bot, review.body):
                owed.append(texts.review_feedback(id=f"review:{review.id}", author=review.author,
                                                  body=review.body, what="review"))  # fmt: skip
        resolved: set[int] | None = None
        for comment in comments:
            root = comment.in_reply_to or comment.id
            wanted = (comment.in_reply_to is None and comment.review_id in asking) or self._mentions(comment.body)
            if not wanted or not await counts(comment.author, comment.author_is_bot, comment.body):
                continue
            if resolved is None:
                resolved = await self.github.resolved_comments(full, number)
            if root in resolved:
                continue
            owed.append(texts.review_feedback(
                id=f"review-comment:{comment.id}", author=comment.author, body=comment.body,
                path=comment.path, line=comment.line, reply_to=root))  # fmt: skip
        for comment in issue_comments:
            if self._mentions(comment.body) and await counts(comment.author, comment.author_is_bot, comment.body):
                owed.append(texts.review_feedback(id=f"comment:{comment.id}", author=comment.author,
                                                  body=comment.body, what="comment"))  # fmt: skip
        return [entry for entry in owed if entry.id not in handled]

    async def _checks(
        self, repo: RepoInfo, pull: PullInfo, handled: set[str], counted: list[WorkItem],
        said: list[feedback.Marker],
    ) -> list[Feedback]:  # fmt: skip
        full, number = repo.full_name, pull.number
        runs = await self.github.check_runs(full, pull.head_sha)
        failing = [r for r in runs if r.status == "completed" and r.conclusion in FAILED_CONCLUSIONS]
        owed: list[Feedback] = []
        base_runs = None
        for run in failing:
            if f"check:{run.name}:{pull.head_sha}" in handled:
                continue
            if base_runs is None:
                base_runs = await self.github.check_runs(full, pull.base_sha or pull.base_ref)
            if any(b.name == run.name and b.conclusion in FAILED_CONCLUSIONS for b in base_runs):
                key = {"pull": number, "check": texts._slug(run.name), "base": pull.base_sha[:12]}
                if not feedback.has_marker(said, "base-fails", **key):
                    await self.github.comment(full, number, texts.fails_on_base(
                        pull_number=number, check=run.name, base=pull.base_ref,
                        base_sha=pull.base_sha))  # fmt: skip
                continue
            fixes = sum(1 for item in counted if item.kind is WorkKind.CI_FIX)
            if fixes >= self.max_ci_fixes:
                if not feedback.has_marker(said, "ci-cap", pull=number):
                    await self.github.comment(full, number, texts.ci_cap(pull_number=number, fixes=fixes))
                return []
            log_text = await self.github.job_log(full, run.id) or "\n".join(
                part for part in (run.title, run.summary, run.text) if part)
            owed.append(texts.check_feedback(name=run.name, head_sha=pull.head_sha, log=log_text))
        return owed

    @staticmethod
    def _conflict(pull: PullInfo, handled: set[str]) -> list[Feedback]:
        if pull.mergeable is not False or pull.mergeable_state != "dirty":
            return []
        entry = texts.conflict_feedback(base=pull.base_ref, head_sha=pull.head_sha, base_sha=pull.base_sha)
        return [] if entry.id in handled else [entry]

    def _mentions(self, body: str) -> bool:
        return self.handle in body.lower()

    # --- writing ---

    async def _queue(self, root: WorkItem, pull: PullInfo, kind: WorkKind, owed: list[Feedback]) -> None:
        spec = texts.spec(pull_number=pull.number, branch=pull.head_ref, kind=kind.value, feedback=owed)
        data = CreateWorkItemInput(
            source=Source.GITHUB,
            source_id=f"pr-{pull.number}",
            source_url=pull.html_url,
            repo=root.repo,
            base_branch=pull.base_ref,
            spec=spec,
            priority=root.priority,
            kind=kind,
            parent_id=root.id,
            branch=pull.head_ref,
            pr_number=pull.number,
            context={
                "prUrl": pull.html_url,
                "headSha": pull.head_sha,
                "feedback": [entry.context(n) for n, entry in enumerate(owed, start=1)],
            },
        )
        item, created = await self.submitter.submit(data)
        log.info("followup.queued pull=%s kind=%s item=%s created=%s feedback=%d",
                 pull.number, kind.value, item.id, created, len(owed))  # fmt: skip

    async def _report_ended(
        self, repo: RepoInfo, number: int, earlier: list[WorkItem], said: list[feedback.Marker]
    ) -> None:
        for item in earlier:
            if item.status in ENDED_BADLY and not feedback.has_marker(
                said, "followup-ended", item=item.id, status=item.status.value
            ):
                await self.github.comment(repo.full_name, number, texts.followup_ended(
                    pull_number=number, item_id=item.id, status=item.status.value,
                    error=item.error))  # fmt: skip
