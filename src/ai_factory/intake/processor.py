"""One issue at a time: from INTAKE_LABEL to a work item, and from the item's end to a report.

`IssueProcessor.intake` handles an open issue carrying INTAKE_LABEL:

1. Trust gate. The latest `labeled` event for INTAKE_LABEL names who added it.
   A `[bot]` is trusted only when listed in TRUSTED_BOTS; a person only with
   write, maintain or admin permission. Anyone else gets one comment (marker
   ``untrusted event=<id>``) and the label is removed, so later polls do not see
   the issue again; if the removal fails, the marker stops a second comment.
2. Already handled? A ``picked-up event=<id>`` marker, or an item created after
   the label event, means this labelling has its item: only the labels are
   moved, as in step 5 (a move cut short by GitHub may have left `-done` or
   `-failed` from an earlier labelling too). So a failed relabel never duplicates
   work, even after the item ended; the report pass then moves `-processing` on.
3. An active item for the issue (re-labelled while queued, running or stuck)
   is reused; a stuck one is retried.
4. Otherwise the spec: the issue's sanitized text, its own task list or a
   generated one. No task: comment, `-failed` label, no item.
5. Submit (idempotent per repo and issue), comment with the spec collapsed,
   then `-processing` replaces INTAKE_LABEL.

`IssueProcessor.report` handles an issue carrying `-processing`: when its
latest item is completed, failed, stuck or cancelled, one report comment
(marker ``report item=<id> status=<s> at=<time of that status>``), then `-done` or
`-failed` replaces `-processing`. A closed issue's still-queued item is
cancelled first (the webhook's job, done again here in case it was missed).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from ai_factory.core.models import (
    ACTIVE_STATUSES,
    SETTLED_STATUSES,
    CreateWorkItemInput,
    Source,
    WorkItem,
    WorkItemStatus,
)
from ai_factory.intake import feedback
from ai_factory.intake.errors import SpecGenerationError
from ai_factory.intake.github import WRITE_ROLES, GitHubIntakeClient
from ai_factory.intake.labels import IntakeLabels, priority_from_labels
from ai_factory.intake.models import Issue, LabelEvent, RepoInfo
from ai_factory.intake.sanitize import sanitize
from ai_factory.intake.spec_gen import SpecGenerator, build_spec, has_task_list
from ai_factory.intake.submitter import Submitter

log = logging.getLogger(__name__)

# Items created this long after the label event belong to it (GitHub stamps whole seconds).
SAME_LABELLING_MARGIN = timedelta(seconds=2)
SPEC_RETRY_BASE_S = 60.0
SPEC_RETRY_MAX_S = 3600.0


class Outcome(StrEnum):
    SKIPPED = "skipped"
    REJECTED = "rejected"  # trust gate
    NO_TASKS = "no_tasks"
    DEFERRED = "deferred"  # spec generation failed; try again later
    SUBMITTED = "submitted"
    EXISTING = "existing"  # an active item was there already
    RELABELLED = "relabelled"  # already handled; labels fixed
    WAITING = "waiting"  # the item is still active
    REPORTED = "reported"


@dataclass(frozen=True)
class Trust:
    trusted: bool
    actor: str | None
    why: str


def normalise_bot(name: str) -> str:
    name = name.strip().lower()
    return name if name.endswith("[bot]") else f"{name}[bot]"


class IssueProcessor:
    def __init__(
        self,
        *,
        github: GitHubIntakeClient,
        submitter: Submitter,
        generator: SpecGenerator,
        labels: IntakeLabels,
        trusted_bots: list[str],
    ) -> None:
        self.github = github
        self.submitter = submitter
        self.generator = generator
        self.labels = labels
        self.trusted_bots = frozenset(normalise_bot(b) for b in trusted_bots if b.strip())
        self._spec_failures: dict[tuple[str, int], tuple[int, float]] = {}

    # --- intake ---

    async def intake(self, repo: RepoInfo, issue: Issue) -> Outcome:
        if issue.state != "open" or not issue.has_label(self.labels.intake):
            return Outcome.SKIPPED
        key = (repo.full_name.lower(), issue.number)
        failures, not_before = self._spec_failures.get(key, (0, 0.0))
        if time.monotonic() < not_before:
            return Outcome.DEFERRED
        events = await self.github.label_events(repo.full_name, issue.number)
        trigger = next((e for e in reversed(events) if self.labels.is_intake(e.label)), None)
        event_id = trigger.id if trigger else 0
        said = await self._said(repo, issue)

        trust = await self._trust(repo, trigger)
        if not trust.trusted:
            log.warning(
                "intake.untrusted repo=%s issue=%s actor=%s why=%s",
                repo.full_name,
                issue.number,
                trust.actor,
                trust.why,
            )
            if not feedback.has_marker(said, "untrusted", event=event_id):
                body = feedback.untrusted(
                    label=self.labels.intake, actor=trust.actor, event_id=event_id
                )
                await self.github.comment(repo.full_name, issue.number, body)
            await self.github.remove_label(repo.full_name, issue.number, self.labels.intake)
            return Outcome.REJECTED

        items = await self.submitter.items_for(repo_url=repo.clone_url, issue_number=issue.number)
        if feedback.has_marker(said, "picked-up", event=event_id) or _created_after(items, trigger):
            await self._start_processing(issue)
            return Outcome.RELABELLED

        active = next((i for i in items if i.status in ACTIVE_STATUSES), None)
        if active is not None:
            retried = active.status is WorkItemStatus.STUCK
            if retried:
                active = await self.submitter.retry(active.id)
            body = feedback.already_active(item=active, event_id=event_id, retried=retried)
            await self.github.comment(repo.full_name, issue.number, body)
            await self._start_processing(issue)
            return Outcome.EXISTING

        title, body_text = sanitize(issue.title), sanitize(issue.body)
        try:
            spec = await build_spec(
                title=title or f"Issue #{issue.number}", body=body_text, generator=self.generator
            )
        except SpecGenerationError as exc:
            wait = min(SPEC_RETRY_BASE_S * 2**failures, SPEC_RETRY_MAX_S)
            self._spec_failures[key] = (failures + 1, time.monotonic() + wait)
            log.warning(
                "intake.spec_failed repo=%s issue=%s retry_in_s=%.0f error=%s",
                repo.full_name,
                issue.number,
                wait,
                exc,
            )
            return Outcome.DEFERRED
        self._spec_failures.pop(key, None)
        if spec is None:
            log.info("intake.no_tasks repo=%s issue=%s", repo.full_name, issue.number)
            if not feedback.has_marker(said, "no-tasks", event=event_id):
                source = "issue" if has_task_list(body_text) else "generated"
                await self.github.comment(
                    repo.full_name,
                    issue.number,
                    feedback.no_tasks(event_id=event_id, source=source),
                )
            await self._set_labels(
                issue, add=[self.labels.failed], remove=[self.labels.intake, self.labels.processing]
            )
            return Outcome.NO_TASKS

        item, created = await self.submitter.submit(
            CreateWorkItemInput(
                source=Source.GITHUB,
                source_id=str(issue.number),
                source_url=issue.html_url,
                repo=repo.clone_url,
                base_branch=repo.default_branch,
                spec=spec.text,
                priority=priority_from_labels(issue.labels),
            )
        )
        log.info(
            "intake.submitted repo=%s issue=%s item=%s created=%s priority=%s tasks=%d source=%s",
            repo.full_name,
            issue.number,
            item.id,
            created,
            item.priority,
            spec.tasks,
            spec.source,
        )
        await self.github.comment(
            repo.full_name,
            issue.number,
            feedback.picked_up(item=item, spec=spec, event_id=event_id),
        )
        await self._start_processing(issue)
        return Outcome.SUBMITTED if created else Outcome.EXISTING

    async def _trust(self, repo: RepoInfo, trigger: LabelEvent | None) -> Trust:
        if trigger is None or not trigger.actor:
            return Trust(False, None, "no labeled event names who added the label")
        if trigger.actor_is_bot:
            if normalise_bot(trigger.actor) in self.trusted_bots:
                return Trust(True, trigger.actor, "bot listed in TRUSTED_BOTS")
            return Trust(False, trigger.actor, "bot not listed in TRUSTED_BOTS")
        permission = await self.github.permission(repo.full_name, trigger.actor)
        return Trust(
            permission.permission in WRITE_ROLES or permission.role_name in WRITE_ROLES,
            trigger.actor,
            f"permission {permission.role_name or permission.permission}",
        )

    async def _said(self, repo: RepoInfo, issue: Issue) -> list[feedback.Marker]:
        """The markers of intake's own comments on the issue (what it has already said)."""
        return feedback.markers(
            await self.github.comments(repo.full_name, issue.number),
            author=await self.github.login(),
        )

    async def _start_processing(self, issue: Issue) -> None:
        stale = [self.labels.done, self.labels.failed, self.labels.intake]
        await self._set_labels(issue, add=[self.labels.processing], remove=stale)

    # --- reports ---

    async def report(self, repo: RepoInfo, issue: Issue) -> Outcome:
        if not issue.has_label(self.labels.processing):
            return Outcome.SKIPPED
        items = await self.submitter.items_for(repo_url=repo.clone_url, issue_number=issue.number)
        if not items:
            log.debug("intake.no_item repo=%s issue=%s", repo.full_name, issue.number)
            return Outcome.SKIPPED
        item = items[0]
        if issue.state == "closed" and item.status is WorkItemStatus.QUEUED:
            item = (
                await self.submitter.cancel_queued(
                    repo_url=repo.clone_url,
                    issue_number=issue.number,
                    reason="GitHub: issue closed",
                )
                or item
            )
        if item.status not in SETTLED_STATUSES:
            return Outcome.WAITING
        said = await self._said(repo, issue)
        if not feedback.has_marker(said, "report", **feedback.report_key(item)):
            await self.github.comment(
                repo.full_name, issue.number, feedback.report(item, intake_label=self.labels.intake)
            )
            log.info(
                "intake.reported repo=%s issue=%s item=%s status=%s",
                repo.full_name,
                issue.number,
                item.id,
                item.status,
            )
        final = {
            WorkItemStatus.COMPLETED: [self.labels.done],
            WorkItemStatus.FAILED: [self.labels.failed],
            WorkItemStatus.STUCK: [self.labels.failed],
        }.get(item.status, [])
        await self._set_labels(issue, add=final, remove=[self.labels.processing])
        return Outcome.REPORTED

    # --- labels ---

    async def _set_labels(self, issue: Issue, *, add: list[str], remove: list[str]) -> None:
        """Add what is missing first, then remove what is there (GitHub writes only)."""
        missing = [label for label in add if not issue.has_label(label)]
        if missing:
            await self.github.add_labels(issue.repo, issue.number, missing)
        for label in remove:
            if issue.has_label(label):
                await self.github.remove_label(issue.repo, issue.number, label)


def _created_after(items: list[WorkItem], trigger: LabelEvent | None) -> bool:
    if trigger is None:
        return False
    return any(item.created_at > trigger.created_at + SAME_LABELLING_MARGIN for item in items)
