"""The orchestrator: HTTP API, ledger, queue, workers, scheduler, limits, locks, metrics."""
