"""The intake loop, one per factory.

Every POLL_INTERVAL ms, for each of REPOS: open issues labelled INTAKE_LABEL go
through `IssueProcessor.intake`, issues labelled `-processing` through
`IssueProcessor.report`, and the factory's open pull requests through
`FollowUpPlanner.check` (review feedback, failing checks, conflicts). In between, about once a second, it takes the issues
webhooks asked about (`Submitter.take_requests`), so a labelled issue is picked
up at once (and an edited one already picked up is checked, `check_edits`);
polling stays as the backstop for missed deliveries. One loop does
all GitHub work, one request at a time, as GitHub asks of integrations.

A failure on one issue is logged and the loop goes on with the next; nothing
here stops the loop but cancellation.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import TypeVar

from ai_factory.core.errors import FactoryError
from ai_factory.core.settings import Settings, normalise_repo
from ai_factory.intake.followups import BRANCH_PREFIX, FollowUp, FollowUpPlanner
from ai_factory.intake.github import GitHubIntakeClient
from ai_factory.intake.labels import IntakeLabels
from ai_factory.intake.models import RepoInfo
from ai_factory.intake.processor import IssueProcessor, Outcome
from ai_factory.intake.spec_gen import SpecGenerator, generator_from_settings
from ai_factory.intake.submitter import Submitter

log = logging.getLogger(__name__)

R = TypeVar("R")
REQUEST_CHECK_INTERVAL_S = 1.0
REPO_CACHE_S = 600.0
@dataclass
class PollSummary:
    outcomes: dict[str, list[int]] = field(default_factory=dict)
    errors: int = 0

    def add(self, outcome: Outcome | None, number: int) -> None:
        if outcome is None:
            self.errors += 1
        else:
            self.outcomes.setdefault(outcome.value, []).append(number)


class IntakeService:
    def __init__(
        self,
        *,
        github: GitHubIntakeClient,
        processor: IssueProcessor,
        submitter: Submitter,
        repos: list[str],
        followups: FollowUpPlanner | None = None,
        labels: IntakeLabels,
        poll_interval_s: float,
        request_check_s: float = REQUEST_CHECK_INTERVAL_S,
    ) -> None:
        self.github = github
        self.processor = processor
        self.followups = followups
        self.submitter = submitter
        self.repos = repos  # owner/repo (settings normalise REPOS)
        self.labels = labels
        self.poll_interval_s = poll_interval_s
        self.request_check_s = request_check_s
        self._repo_cache: dict[str, tuple[float, RepoInfo]] = {}

    @classmethod
    def build(
        cls,
        settings: Settings,
        *,
        submitter: Submitter,
        github: GitHubIntakeClient | None = None,
        generator: SpecGenerator | None = None,
    ) -> IntakeService:
        github = github or GitHubIntakeClient.from_settings(settings)
        labels = IntakeLabels(settings.intake_label)
        processor = IssueProcessor(
            github=github,
            submitter=submitter,
            generator=generator or generator_from_settings(settings),
            labels=labels,
            trusted_bots=settings.trusted_bots,
        )
        followups = FollowUpPlanner(
            github=github,
            submitter=submitter,
            trust=processor.trust,
            handle=settings.followup_handle,
            max_rounds=settings.followup_max_rounds,
            max_ci_fixes=settings.followup_max_ci_fixes,
        )
        return cls(
            github=github,
            processor=processor,
            followups=followups,
            submitter=submitter,
            repos=settings.repos,
            labels=labels,
            poll_interval_s=settings.poll_interval_ms / 1000,
        )

    async def run(self) -> None:
        """Poll and take webhook requests until cancelled."""
        log.info(
            "intake.started repos=%s label=%s interval_s=%.0f",
            ",".join(self.repos),
            self.labels.intake,
            self.poll_interval_s,
        )
        next_poll = time.monotonic()
        while True:
            await self._guarded("requests", self.handle_requests())
            if time.monotonic() >= next_poll:
                await self._guarded("poll", self.poll_once())
                next_poll = time.monotonic() + self.poll_interval_s
            await asyncio.sleep(max(0.0, min(self.request_check_s, next_poll - time.monotonic())))

    async def poll_once(self) -> PollSummary:
        """One pass over REPOS: new labelled issues, then reports owed."""
        summary = PollSummary()
        for name in self.repos:
            try:
                repo = await self.repo(name)
                fresh = await self.github.issues_with_label(repo.full_name, self.labels.intake)
                for issue in fresh:
                    summary.add(
                        await self._guarded(
                            f"{name}#{issue.number}", self.processor.intake(repo, issue)
                        ),
                        issue.number,
                    )
                owed = await self.github.issues_with_label(
                    repo.full_name, self.labels.processing, state="all"
                )
                for issue in owed:
                    summary.add(
                        await self._guarded(
                            f"{name}#{issue.number}", self.processor.report(repo, issue)
                        ),
                        issue.number,
                    )
                if self.followups is not None:
                    for pull in await self.github.open_pulls(repo.full_name):
                        if pull.head_ref.startswith(BRANCH_PREFIX):
                            await self._guarded(f"{name} pull #{pull.number}",
                                                self.followups.check(repo, pull.number))  # fmt: skip
            except FactoryError as exc:
                summary.errors += 1
                log.warning("intake.repo_failed repo=%s error=%s", name, exc)
        log.debug("intake.polled outcomes=%s errors=%d", summary.outcomes, summary.errors)
        return summary

    async def handle_requests(self) -> int:
        """Process the issues webhooks asked about; return how many were taken."""
        requests = await self.submitter.take_requests()
        watched = {r.lower(): r for r in self.repos}
        for request in requests:
            name = watched.get(normalise_repo(request.repo).lower())
            if name is None:
                log.info("intake.request_ignored repo=%s reason=not in REPOS", request.repo)
                continue
            await self._guarded(
                f"{name}#{request.issue_number}", self._handle(name, request.issue_number)
            )
        return len(requests)

    async def _handle(self, name: str, number: int) -> Outcome | FollowUp:
        repo = await self.repo(name)
        issue = await self.github.issue(repo.full_name, number)
        if issue is None:  # no such issue, or a pull request
            if self.followups is not None:
                return await self.followups.check(repo, number)
            return Outcome.SKIPPED
        if issue.has_label(self.labels.intake):
            return await self.processor.intake(repo, issue)
        return await self.processor.check_edits(repo, issue)

    async def repo(self, name: str) -> RepoInfo:
        cached = self._repo_cache.get(name.lower())
        if cached and time.monotonic() - cached[0] < REPO_CACHE_S:
            return cached[1]
        info = await self.github.repo(name)
        self._repo_cache[name.lower()] = (time.monotonic(), info)
        return info

    async def _guarded(self, what: str, work: Awaitable[R]) -> R | None:
        try:
            return await work
        except FactoryError as exc:
            log.warning("intake.failed what=%s error=%s", what, exc)
        except Exception:
            log.exception("intake.crashed what=%s", what)
        return None
