"""The `factory` command line: parses arguments, builds objects, calls the core.

Commands that inspect or change work talk to the API (ORCHESTRATOR_URL, or this
machine's HOST and PORT), so they work the same against a factory on this machine
or another one.

Every command is a fresh interpreter, so command modules import only Typer at the
top and load what a command needs (settings, Rich, the server stack) inside it:
`factory --help` lists the commands without paying for any of them.
"""

from __future__ import annotations

import sys

import typer

from ai_factory.cli import doctor, intake, learnings, login, serve, watch, work, worker
from ai_factory.cli import runtime as runtime_commands
from ai_factory.cli.output import err
from ai_factory.core.errors import FactoryError

app = typer.Typer(
    name="factory",
    help="AI Factory: GitHub issues in, pull requests out.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
serve.register(app)
work.register(app)
watch.register(app)
doctor.register(app)
login.register(app)
learnings.register(app)
intake.register(app)
runtime_commands.register(app)
worker.register(app)


def main() -> None:
    try:
        app()
    except FactoryError as exc:
        err.print(f"error: {exc}", markup=False)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
