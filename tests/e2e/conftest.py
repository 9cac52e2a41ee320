"""Shared e2e fixtures: the scripted model and an origin repository.

The helpers the e2e tests share (the claude environment, `Origin`, queueing an item and
claiming it as the scheduler does, worker settings) are in tests/support.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ai_factory.sim import SimServer
from tests.support.origin import Origin


@pytest.fixture
def sim() -> Iterator[SimServer]:
    with SimServer() as server:
        yield server


@pytest.fixture
def origin(tmp_path: Path) -> Origin:
    return Origin.create(tmp_path)
