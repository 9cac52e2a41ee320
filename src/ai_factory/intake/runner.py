"""The two ways intake runs, each built from settings read once by its entry point.

- `component(settings)`: inside the orchestrator (`factory up`), as one of its
  background components, submitting straight to the queue.
- `run_standalone(settings)`: alone (`factory intake`, e.g. a compose service),
  submitting over the API at ORCHESTRATOR_URL with FACTORY_API_TOKEN.

Both need GITHUB_TOKEN and REPOS (`intake_configured`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable

from ai_factory.core.errors import ConfigError
from ai_factory.core.settings import Settings
from ai_factory.intake.api import intake_configured
from ai_factory.intake.github import GitHubIntakeClient
from ai_factory.intake.service import IntakeService
from ai_factory.intake.spec_gen import SpecGenerator
from ai_factory.intake.store import IntakeStore
from ai_factory.intake.submitter import ApiSubmitter, DirectSubmitter
from ai_factory.orchestrator.services import Services

log = logging.getLogger(__name__)


def component(
    settings: Settings,
    *,
    github: GitHubIntakeClient | None = None,
    generator: SpecGenerator | None = None,
) -> Callable[[Services], Awaitable[None]] | None:
    """The intake component for the orchestrator, or None when intake is not configured.

    `github` and `generator` replace the ones built from settings (tests).
    """
    if not intake_configured(settings):
        return None

    async def intake(services: Services) -> None:
        submitter = DirectSubmitter(queue=services.queue, store=IntakeStore(db=services.db))
        service = IntakeService.build(
            settings, submitter=submitter, github=github, generator=generator
        )
        await service.run()

    return intake


async def run_standalone(settings: Settings) -> None:
    """Run intake against a remote orchestrator until SIGINT or SIGTERM."""
    if not intake_configured(settings):
        raise ConfigError("GITHUB_TOKEN and REPOS: both are required to run the intake")
    submitter = ApiSubmitter(base_url=settings.api_url, token=settings.api_token)
    try:
        service = IntakeService.build(settings, submitter=submitter)
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        assert task is not None
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        log.info("intake.standalone orchestrator=%s", settings.api_url)
        with contextlib.suppress(asyncio.CancelledError):
            await service.run()
        log.info("intake.stopped")
    finally:
        await submitter.close()
