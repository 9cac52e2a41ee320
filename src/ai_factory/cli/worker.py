"""`factory worker` (one work item, start to end) and `factory demo` (the whole factory, scripted)."""

from __future__ import annotations

import sys

import typer


def worker(
    item: str = typer.Option(
        None,
        "--item",
        help="Work item id (instead of WORK_ITEM); registers with FACTORY_API_TOKEN.",
    ),
) -> None:
    """Work on one item: WORKER_ID, WORKER_TOKEN, WORK_ITEM, ORCHESTRATOR_URL (set by the spawner)."""
    from ai_factory.worker.main import main

    sys.exit(main(item=item))


def demo(
    keep: bool = typer.Option(False, "--keep", help="Keep the demo's temporary folder."),
    port: int = typer.Option(0, "--port", help="Port for the demo factory (0: any free port)."),
) -> None:
    """Run the whole factory once on a sample repo, with a scripted model (no Anthropic account)."""
    from ai_factory.worker.demo import run_demo

    sys.exit(run_demo(keep=keep, port=port))


def register(app: typer.Typer) -> None:
    app.command()(worker)
    app.command()(demo)
