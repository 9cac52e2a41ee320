"""Bad submissions are refused at the door (422, one line), before any worker is spawned;
the same repository spelled differently is one repository."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.support.repos import make_local_repo
from tests.support.server import ServerThread
from tests.support.settings import make_settings

SPEC = "# T\n- [ ] do it\n"


@pytest.fixture
def allowed(tmp_path: Path) -> Path:
    folder = tmp_path / "projects"
    folder.mkdir()
    return folder


@pytest.fixture
def http(tmp_path: Path, database_url: str, allowed: Path):
    settings = make_settings(tmp_path, database_url=database_url, local_repo_roots=str(allowed))
    server = ServerThread(settings).start()
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client
    server.stop()


def submit(http: httpx.Client, repo: str, **body) -> httpx.Response:
    return http.post("/api/work", json={"repo": repo, "spec": SPEC, **body})


def refused(response: httpx.Response, words: str) -> None:
    assert response.status_code == 422, response.text
    assert words in response.json()["error"], response.json()


def test_a_repository_that_cannot_be_worked_on_is_refused(
    http: httpx.Client, allowed: Path, tmp_path: Path
) -> None:
    repo = make_local_repo(allowed / "app")
    plain = allowed / "plain"
    plain.mkdir()
    outside = make_local_repo(tmp_path / "elsewhere")
    checkout = make_local_repo(allowed / "checkout")

    refused(submit(http, "./app"), "relative path")
    refused(submit(http, str(allowed / "missing")), "does not exist")
    refused(submit(http, str(plain)), "not a git repository")
    refused(submit(http, str(repo), baseBranch="develop"), "has no branch 'develop'")
    refused(submit(http, str(outside)), "outside LOCAL_REPO_ROOTS")
    refused(submit(http, str(tmp_path / "home")), "inside FACTORY_HOME")
    refused(submit(http, str(checkout / ".git")), "a checkout's .git folder")
    refused(http.post("/api/work", json={"repo": str(repo), "spec": "# no tasks here\n"}), "no task checkboxes")
    assert http.get("/api/work").json() == []  # nothing was queued
    assert submit(http, str(repo)).status_code == 201
    assert submit(http, str(checkout)).status_code == 201


def test_one_repository_however_it_is_spelled(http: httpx.Client, allowed: Path) -> None:
    repo = make_local_repo(allowed / "r.git")
    (allowed / "link").symlink_to(repo)
    spellings = [str(repo), f"{repo}/", f"{allowed}/x/../r.git", str(allowed / "link")]
    items = [submit(http, s, source="github", sourceId="7").json() for s in spellings]
    assert {i["repo"] for i in items} == {str(repo.resolve())}
    assert len({i["id"] for i in items}) == 1  # the same issue on the same repository: one item
    hub = [submit(http, s, source="github", sourceId="8").json()
           for s in ("https://github.com/Acme/Widgets", "https://github.com/acme/widgets.git/")]  # fmt: skip
    assert hub[0]["id"] == hub[1]["id"] and hub[0]["repo"] == "https://github.com/acme/widgets.git"
    listed = http.get("/api/work", params={"repo": "https://GitHub.com/ACME/widgets"}).json()
    assert [i["id"] for i in listed] == [hub[0]["id"]]


def test_the_default_roots_are_the_home_folder(tmp_path: Path) -> None:
    from ai_factory.core.settings import load_settings

    assert load_settings(_env_file=None).local_repo_roots == [Path.home()]
