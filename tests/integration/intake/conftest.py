"""Fixtures of the intake tests: a GitHub stand-in, a real orchestrator, the scripted model,
and intake wired to them (`tests.support.intake_rig.Rig`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from ai_factory.sim import SimServer
from tests.github_standin import GitHubStandin
from tests.github_standin.fixtures import github_standin  # noqa: F401 - fixture
from tests.support.intake_rig import MAINTAINER, READER, REPO, Rig, intake_settings
from tests.support.server import ServerThread


@pytest.fixture
def standin(github_standin: GitHubStandin) -> GitHubStandin:  # noqa: F811
    github_standin.create_repo("acme", "widgets", files={"README.md": "# widgets\n"})
    github_standin.set_permission(REPO, MAINTAINER, "maintain")
    github_standin.set_permission(REPO, READER, "read")
    return github_standin


@pytest.fixture
def sim() -> Iterator[SimServer]:
    with SimServer() as server:
        yield server


@pytest.fixture
async def rig(
    tmp_path: Path, database_url: str, standin: GitHubStandin, sim: SimServer
) -> AsyncIterator[Rig]:
    settings = intake_settings(tmp_path, database_url, standin)
    server = ServerThread(settings).start()
    built = Rig(
        standin=standin, api=server, settings=settings, sim=sim, tmp_path=tmp_path, submitters=[]
    )
    try:
        yield built
    finally:
        for submitter in built.submitters:
            await submitter.close()
        server.stop()
