"""pytest fixtures for the GitHub stand-in.

Import them into a conftest.py (or a test module) to use them:

    from tests.github_standin.fixtures import github_standin  # noqa: F401
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .standin import GitHubStandin


@pytest.fixture
def github_standin(tmp_path: Path) -> Iterator[GitHubStandin]:
    """A running stand-in on an ephemeral port, its bare repositories under tmp_path.

    Fails the test at teardown if the stand-in itself crashed on a request.
    """
    with GitHubStandin(tmp_path / "github") as standin:
        yield standin
        assert standin.crashes == 0, "the GitHub stand-in crashed on a request; see the log"
