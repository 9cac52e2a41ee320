"""`factory intake`: the GitHub intake as its own process."""

from __future__ import annotations

import asyncio

import typer

from ai_factory.cli.context import settings_for_command
from ai_factory.core.processes import make_undumpable


def intake() -> None:
    """Watch REPOS for issues labelled INTAKE_LABEL and send them to the factory at
    ORCHESTRATOR_URL; report results back on the issues (needs GITHUB_TOKEN and REPOS)."""
    from ai_factory.intake.runner import run_standalone  # the intake stack, only when asked for

    make_undumpable()  # GITHUB_TOKEN is in this environment
    settings = settings_for_command(log=True)
    asyncio.run(run_standalone(settings))


def register(app: typer.Typer) -> None:
    app.command()(intake)
