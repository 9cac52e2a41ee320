"""One issue at a time: from INTAKE_LABEL to a work item, and from the item's end to a report.

`IssueProcessor.intake` handles an open issue carrying INTAKE_LABEL:

1. Trust gate (`trust.TrustGate`). The latest `labeled` event for INTAKE_LABEL
   names who added it. A `[bot]` is trusted only when listed in TRUSTED_BOTS; a
   person only with write, maintain or admin permission. Anyone else gets one
   comment (marker ``untrusted event=<id>``) and the label is removed, so later
   polls do not see the issue again; if the removal fails, the marker stops a
   second comment.
2. Already handled? A ``picked-up event=<id>`` marker, or an item created after
   the label event, means this labelling has its item: only the labels are
   moved, as in step 5 (a move cut short by GitHub may have left `-done` or
   `-failed` from an earlier labelling too). So a failed relabel never duplicates
   work, even after the item ended; the report pass then moves `-processing` on.
3. An active item for the issue (re-labelled while queued, running or stuck)
   is reused; a stuck one is retried.
4. Otherwise the spec, from the text a trusted user labelled. The title and
   body are read with their edits (GraphQL, one answer); one edited at or after
   the label by someone untrusted is refused like an untrusted label (marker
   ``edited event=<id>``, label removed): a maintainer labels it again after
   reviewing the edit. Then the sanitized text, its own task list or a
   generated one. No task: comment, `-failed` label, no item.
5. Submit (idempotent per repo and issue), comment with the spec collapsed,
   then `-processing` replaces INTAKE_LABEL.

`IssueProcessor.check_edits` handles an issue carrying `-processing` that was
edited (webhooks ask): an edit after the label by someone untrusted cancels the
item if it is still queued, with one comment (marker ``edited event=<id>
item=<id>``, and the item's ``report`` marker); a worker that has the item goes
on, since the item holds the text as labelled and no edit reaches it. Polling
does not look for these edits: for the same reason they cannot reach a worker.

`IssueProcessor.report` handles an issue carrying `-processing`: when its
latest item is completed, failed, stuck or cancelled, one report comment
(marker ``report item=<id> status=<s> at=<time of that status>``), then `-done` or
`-failed` replaces `-processing`. A closed issue's still-queued item is
cancelled first (the webhook's job, done again here in case it was missed).
"""

from __future__ import annotations

import logging
import time
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
from ai_factory.intake.github import GitHubIntakeClient
from ai_factory.intake.labels import IntakeLabels, priority_from_labels
from ai_factory.intake.models import ContentEdit, Issue, LabelEvent, RepoInfo
from ai_factory.intake.sanitize import sanitize
from ai_factory.intake.spec_gen import SpecGenerator, build_spec, has_task_list
from ai_factory.intake.submitter import Submitter
from ai_factory.intake.trust import TrustGate

log = logging.getLogger(__name__)

# Items created this long after the label event belong to it (GitHub stamps whole seconds).
SAME_LABELLING_MARGIN = timedelta(seconds=2)
SPEC_RETRY_BASE_S = 60.0
SPEC_RETRY_MAX_S = 3600.0


class Outcome(StrEnum):
    SKIPPED = "skipped"
    REJECTED = "rejected"  # trust gate
    EDITED = "edited"  # edited after the label by someone untrusted: refused or cancelled
    NO_TASKS = "no_tasks"
    DEFERRED = "deferred"  # spec generation failed; try again later
    SUBMITTED = "submitted"
    EXISTING = "existing"  # an active item was there already
    RELABELLED = "relabelled"  # already handled; labels fixed
    WAITING = "waiting"  # the item is still active
    REPORTED = "reported"


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
        self.trust = TrustGate(github=github, trusted_bots=trusted_bots)
        self._spec_failures: dict[tuple[str, int], tuple[int, float]] = {}

    # --- intake ---

    async def intake(self, repo: RepoInfo, issue: Issue) -> Outcome:
        if issue.state != "open" or not issue.has_label(self.labels.intake):
            return Outcome.SKIPPED
        key = (repo.full_name.lower(), issue.number)
        failures, not_before = self._spec_failures.get(key, (0, 0.0))
        if time.monotonic() < not_before:
            return Outcome.DEFERRED
        trigger = await self._trigger(repo, issue)
        event_id = trigger.id if trigger else 0
        said = await self._said(repo, issue)

        trust = await self.trust.label(repo, trigger)
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

        assert trigger is not None  # trusted, so a labeled event names who added the label
        text = await self.github.issue_text(repo.full_name, issue.number)
        edits = await self.trust.untrusted_edits(repo, text, since=trigger.created_at)
        if edits:
            return await self._refuse_edited(repo, issue, trigger, edits, said)
        title, body_text = sanitize(text.title), sanitize(text.body)
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

    async def _trigger(self, repo: RepoInfo, issue: Issue) -> LabelEvent | None:
        """The latest `labeled` event for INTAKE_LABEL: the labelling being acted on."""
        events = await self.github.label_events(repo.full_name, issue.number)
        return next((e for e in reversed(events) if self.labels.is_intake(e.label)), None)

    async def _refuse_edited(
        self,
        repo: RepoInfo,
        issue: Issue,
        trigger: LabelEvent,
        edits: list[ContentEdit],
        said: list[feedback.Marker],
    ) -> Outcome:
        log.warning(
            "intake.edited_after_label repo=%s issue=%s label_by=%s edited_by=%s",
            repo.full_name,
            issue.number,
            trigger.actor,
            ",".join(sorted({e.editor or "?" for e in edits})),
        )
        if not feedback.has_marker(said, "edited", event=trigger.id):
            body = feedback.edited(
                label=self.labels.intake,
                labeller=trigger.actor,
                editors=[e.editor for e in edits],
                event_id=trigger.id,
            )
            await self.github.comment(repo.full_name, issue.number, body)
        await self.github.remove_label(repo.full_name, issue.number, self.labels.intake)
        return Outcome.EDITED

    # --- edits after pickup ---

    async def check_edits(self, repo: RepoInfo, issue: Issue) -> Outcome:
        """An issue with an active item was edited: cancel the item if nobody trusted did it."""
        if not issue.has_label(self.labels.processing):
            return Outcome.SKIPPED
        items = await self.submitter.items_for(repo_url=repo.clone_url, issue_number=issue.number)
        active = next((i for i in items if i.status in ACTIVE_STATUSES), None)
        trigger = await self._trigger(repo, issue) if active else None
        if active is None or trigger is None:
            return Outcome.SKIPPED
        text = await self.github.issue_text(repo.full_name, issue.number)
        edits = await self.trust.untrusted_edits(repo, text, since=trigger.created_at)
        if not edits:
            return Outcome.WAITING
        editors = [e.editor for e in edits]
        who = ",".join(sorted({e or "?" for e in editors}))
        cancelled = None
        if active.status is WorkItemStatus.QUEUED:
            cancelled = await self.submitter.cancel_queued(
                repo_url=repo.clone_url,
                issue_number=issue.number,
                reason=f"GitHub: issue edited by {who} after it was labelled",
            )
        log.warning(
            "intake.edited_while_active repo=%s issue=%s item=%s edited_by=%s cancelled=%s",
            repo.full_name,
            issue.number,
            active.id,
            who,
            cancelled is not None,
        )
        said = await self._said(repo, issue)
        if not feedback.has_marker(said, "edited", event=trigger.id):
            body = feedback.edited_while_active(
                label=self.labels.intake,
                editors=editors,
                event_id=trigger.id,
                item=cancelled or active,
                cancelled=cancelled is not None,
            )
            await self.github.comment(repo.full_name, issue.number, body)
        if cancelled is None:
            return Outcome.WAITING
        await self.report(repo, issue)  # the comment carries the report's marker: labels only
        return Outcome.EDITED

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
