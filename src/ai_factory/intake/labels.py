"""The labels intake reads and writes, and the priority labels map to.

An issue moves `ai-factory` (INTAKE_LABEL: "please build this") to
`ai-factory-processing` (a work item exists; a final report is owed) to
`ai-factory-done` or `ai-factory-failed`. The last three are named after
INTAKE_LABEL, so a factory watching `bot` uses `bot-processing` and so on.
Label names compare case-insensitively, as GitHub's do.

Priority comes from labels: `critical`/`P0`, `high`/`P1`, `low`/`P3`, otherwise
medium.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ai_factory.core.models import Priority

_PRIORITY_LABELS: list[tuple[Priority, frozenset[str]]] = [
    (Priority.CRITICAL, frozenset({"critical", "p0"})),
    (Priority.HIGH, frozenset({"high", "p1"})),
    (Priority.LOW, frozenset({"low", "p3"})),
]


def priority_from_labels(labels: Iterable[str]) -> Priority:
    names = {label.lower() for label in labels}
    for priority, wanted in _PRIORITY_LABELS:
        if names & wanted:
            return priority
    return Priority.MEDIUM


@dataclass(frozen=True)
class IntakeLabels:
    intake: str = "ai-factory"

    @property
    def processing(self) -> str:
        return f"{self.intake}-processing"

    @property
    def done(self) -> str:
        return f"{self.intake}-done"

    @property
    def failed(self) -> str:
        return f"{self.intake}-failed"

    def is_intake(self, name: str) -> bool:
        return name.lower() == self.intake.lower()

    def is_processing(self, name: str) -> bool:
        return name.lower() == self.processing.lower()
