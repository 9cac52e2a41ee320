"""The orchestrator: HTTP API, queue, worker lifecycle, scheduler, limits, locks, metrics."""
