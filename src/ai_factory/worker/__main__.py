"""`python -m ai_factory.worker`: `factory worker` without the CLI around it.

The process spawner starts workers this way: skipping Typer and Rich makes a worker
register noticeably sooner. Errors print one line and exit non-zero, as the CLI does.
"""

import sys

from ai_factory.core.errors import FactoryError
from ai_factory.worker.main import EXIT_UNREGISTERED, main

try:
    sys.exit(main())
except FactoryError as exc:
    print(f"error: {exc}", file=sys.stderr)
    sys.exit(EXIT_UNREGISTERED)
