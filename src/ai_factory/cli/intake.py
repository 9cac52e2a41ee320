"""`factory intake`: the GitHub intake as its own process."""

from __future__ import annotations

import typer

from ai_factory.cli.context import settings_for_command
from ai_factory.core.processes import make_undumpable


def intake() -> None:
    """Run the GitHub intake alone, against ORCHESTRATOR_URL.

    Watches REPOS for issues labelled INTAKE_LABEL, sends them to the factory and reports
    results back on the issues (needs GITHUB_TOKEN and REPOS)."""
    import asyncio

    from ai_factory.intake.runner import run_standalone  # the intake stack, only when asked for

    make_undumpable()  # GITHUB_TOKEN is in this environment
    settings = settings_for_command(log=True)
    asyncio.run(run_standalone(settings))


def register(app: typer.Typer) -> None:
    app.command()(intake)
