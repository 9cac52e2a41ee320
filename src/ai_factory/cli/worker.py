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
    """Work on one item (the orchestrator starts these).

    Reads WORKER_ID, WORKER_TOKEN, WORK_ITEM and ORCHESTRATOR_URL, set by the spawner."""
    from ai_factory.worker.main import main

    sys.exit(main(item=item))


def demo(
    keep: bool = typer.Option(
        False, "--keep", help="Keep the whole folder: factory.log and FACTORY_HOME too."
    ),
    clean: bool = typer.Option(
        False, "--clean", help="Remove the sample repository too when the demo ends."
    ),
    port: int = typer.Option(0, "--port", help="Port for the demo factory (0: any free port)."),
) -> None:
    """Run the factory once on a sample repo, scripted model.

    No Anthropic account is used: the real Claude Code binary talks to a scripted model on
    127.0.0.1. The sample repository, with the worker's branch, stays afterwards (the demo
    prints where and how to remove it) unless --clean."""
    from ai_factory.worker.demo import run_demo

    sys.exit(run_demo(keep=keep, clean=clean, port=port))


def register(app: typer.Typer) -> None:
    app.command()(worker)
    app.command()(demo)
