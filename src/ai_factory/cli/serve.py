"""Long-running commands: `factory up`, `factory orchestrator`, `factory migrate`.

The server stack is imported inside each command: every `factory` process
(including each worker) imports this module, and should not pay for it.
"""

from __future__ import annotations

import typer

from ai_factory.cli.context import settings_for_command
from ai_factory.cli.output import out
from ai_factory.core.processes import make_undumpable


def up() -> None:
    """Run the whole factory: API, workers, dashboard and intake.

    One process: the API and dashboard on HOST:PORT, the queue and scheduler, the workers,
    and the GitHub intake when GITHUB_TOKEN and REPOS are set."""
    import asyncio

    from ai_factory.intake.runner import component as intake_component
    from ai_factory.orchestrator.runtime import Orchestrator

    make_undumpable()  # GITHUB_TOKEN and the database URL may be in this environment
    settings = settings_for_command(log=True)
    intake = intake_component(settings)  # None unless GITHUB_TOKEN and REPOS are set
    asyncio.run(Orchestrator(settings, components=[intake] if intake else []).run())


def orchestrator() -> None:
    """Run the orchestrator alone: API, scheduler and workers.

    For compose or several machines, with `factory intake` run apart."""
    import asyncio

    from ai_factory.orchestrator.runtime import Orchestrator

    make_undumpable()  # GITHUB_TOKEN and the database URL may be in this environment
    settings = settings_for_command(log=True)
    asyncio.run(Orchestrator(settings).run())


def migrate() -> None:
    """Apply database migrations (also done at start-up) and exit."""
    import asyncio

    from ai_factory.core.db.connect import open_database
    from ai_factory.core.db.migrations import available_migrations

    settings = settings_for_command(log=True)

    async def run() -> int:
        async with open_database(settings, migrate=True, max_size=1):
            return len(available_migrations())

    count = asyncio.run(run())
    out.print(f"database is at migration {count:03d}")


def register(app: typer.Typer) -> None:
    app.command()(up)
    app.command()(orchestrator)
    app.command()(migrate)
