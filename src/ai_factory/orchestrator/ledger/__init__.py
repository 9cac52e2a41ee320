"""The ledger: the only code that changes work items and workers.

`Ledger` (worker transitions, one transaction each, fenced by the lease) on top of
`ItemActions` (what users and intake do to items: `items`) on top of `LedgerReads`
(items, workers, supervision views); `records` holds the typed rows
they hand out. Everything else in the orchestrator is policy over the ledger.
"""

from ai_factory.orchestrator.ledger.ledger import Ledger
from ai_factory.orchestrator.ledger.reads import LedgerReads
from ai_factory.orchestrator.ledger.records import Orphan, WorkerRecord, WorkerState

__all__ = ["Ledger", "LedgerReads", "Orphan", "WorkerRecord", "WorkerState"]
