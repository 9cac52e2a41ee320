"""The worker process's exit codes (docs/state-machine.md#worker-processes).

A module of their own, importing nothing: the worker's entry point needs them before
it has imported (or needs) anything else.
"""

EXIT_COMPLETED = 0
EXIT_FAILED = 1
EXIT_STUCK = 2
EXIT_STOPPED = 3  # the lease was lost (cancelled, given to another worker) or a stop signal
EXIT_UNREGISTERED = 4
