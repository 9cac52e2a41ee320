"""The worker's workspace: mirrors, worktrees, exclusions, injection safety, push credentials."""

from __future__ import annotations

import logging
import multiprocessing
import os
import shlex
import subprocess
import threading
from pathlib import Path

import pytest

from ai_factory.worker.gate import CONFIG_FILE, QualityGate
from ai_factory.worker.git import credential_helper
from ai_factory.worker.workspace import Workspace, WorkspaceError
from tests.github_standin import GitHubStandin
from tests.github_standin.fixtures import github_standin  # noqa: F401 - fixture
from tests.support.repos import SPEC, git, make_item, make_local_repo

REPO = "acme/widgets"


@pytest.fixture
def local_repo(tmp_path: Path) -> Path:
    return make_local_repo(tmp_path / "upstream")


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "factory-home"


@pytest.fixture
def standin(github_standin: GitHubStandin) -> GitHubStandin:  # noqa: F811
    github_standin.create_repo("acme", "widgets", files={"README.md": "# widgets\n",
                                                        "src/app.py": "print('hi')\n"})
    return github_standin


def mirrors(home: Path) -> list[Path]:
    return sorted((home / "mirrors").glob("*.git*"))


def assert_clean_and_excluded(workspace: Workspace) -> None:
    """SPEC.md and .ai/ exist, git does not see them, and a user's `git add -A` skips them."""
    assert (workspace.path / "SPEC.md").read_text() == SPEC
    assert git(workspace.path, "status", "--porcelain", "--untracked-files=all") == ""
    (workspace.path / "feature.py").write_text("x = 1\n")
    (workspace.path / ".ai").mkdir(exist_ok=True)
    (workspace.path / ".ai" / "notes.md").write_text("scratch\n")
    git(workspace.path, "add", "-A")
    git(workspace.path, "commit", "--quiet", "-m", "feature")
    committed = git(workspace.path, "show", "--name-only", "--format=", "HEAD").split()
    assert committed == ["feature.py"]
    everything = git(workspace.path, "log", "--name-only", "--format=", "HEAD").split()
    assert "SPEC.md" not in everything and not any(p.startswith(".ai/") for p in everything)


# -- preparing ----------------------------------------------------------------------------


def test_prepare_local_repo_branches_from_base(local_repo: Path, home: Path) -> None:
    item = make_item(str(local_repo))
    workspace = Workspace.prepare(item, home=home)

    assert workspace.path == home / "worktrees" / str(item.id)
    assert workspace.branch == f"factory/{str(item.id)[:8]}"
    assert workspace.repo == str(local_repo)
    base = git(local_repo, "rev-parse", "main").strip()
    assert workspace.base_sha == base == workspace.head_sha()
    assert git(workspace.path, "symbolic-ref", "HEAD").strip() == f"refs/heads/{workspace.branch}"
    assert (workspace.path / "src" / "app.py").read_text() == "print('hi')\n"
    assert workspace.commits_since_base() == [] and workspace.changed_files() == []
    assert not workspace.has_uncommitted_changes()
    assert_clean_and_excluded(workspace)
    assert workspace.changed_files() == ["feature.py"]
    assert len(workspace.commits_since_base()) == 1


def test_prepare_standin_url_on_a_non_default_base(standin: GitHubStandin, home: Path) -> None:
    develop = standin.commit(REPO, {"DEVELOP.md": "next\n"}, branch="develop")
    workspace = Workspace.prepare(make_item(standin.git_url(REPO), base_branch="develop"),
                                  home=home, github_token=standin.token)

    assert workspace.base_sha == develop == workspace.head_sha()
    assert (workspace.path / "DEVELOP.md").is_file()
    assert_clean_and_excluded(workspace)


def test_spec_tracked_by_the_repository_stays_out_of_commits(tmp_path: Path, home: Path) -> None:
    upstream = make_local_repo(tmp_path / "upstream",
                               {"SPEC.md": "the project's own spec\n", "a.txt": "a\n"})
    workspace = Workspace.prepare(make_item(str(upstream)), home=home)

    assert (workspace.path / "SPEC.md").read_text() == SPEC
    assert not workspace.has_uncommitted_changes()
    (workspace.path / "a.txt").write_text("changed\n")
    assert workspace.commit_wip("WIP: a")
    assert workspace.changed_files() == ["a.txt"]
    assert git(workspace.path, "show", "HEAD:SPEC.md") == "the project's own spec\n"


def test_write_file_keeps_injected_config_out_of_commits(local_repo: Path, home: Path) -> None:
    workspace = Workspace.prepare(make_item(str(local_repo)), home=home)
    workspace.write_file("CLAUDE.md", "agent instructions\n")
    workspace.write_file(".ai/prompt.md", "prompt\n")
    workspace.write_file("docs/kept.md", "a real change\n", exclude=False)

    assert workspace.commit_wip("WIP")
    assert workspace.changed_files() == ["docs/kept.md"]
    with pytest.raises(WorkspaceError):
        workspace.write_file("../outside.txt", "no")
    with pytest.raises(WorkspaceError):
        workspace.write_file(".git/config", "no")


def test_gate_config_is_read_from_the_base_commit_not_the_worktree(
    tmp_path: Path, home: Path
) -> None:
    """The agent (or an earlier attempt) editing .factory.toml does not change the gate."""
    repo = make_local_repo(tmp_path / "gated", {".factory.toml": '[gates]\ntest = "pytest -q"\n'})
    item = make_item(str(repo))
    workspace = Workspace.prepare(item, home=home)
    (workspace.path / ".factory.toml").write_text('[gates]\ntest = "true"\n')
    git(workspace.path, "commit", "--quiet", "-am", "weaken the gate")

    config = Workspace.prepare(item, home=home).file_at_base(CONFIG_FILE)
    gate = QualityGate.resolve(config_text=config, configured="make test", timeout_s=60)

    assert gate is not None and gate.argv == ["pytest", "-q"] and gate.source == CONFIG_FILE
    plain = Workspace.prepare(make_item(str(make_local_repo(tmp_path / "plain"))), home=home)
    (plain.path / ".factory.toml").write_text('[gates]\ntest = "true"\n')
    fallback = QualityGate.resolve(config_text=plain.file_at_base(CONFIG_FILE),
                                   configured="make test", timeout_s=60)  # fmt: skip
    assert fallback is not None and fallback.argv == ["make", "test"]


def test_a_retry_starts_from_the_last_commit_and_sets_a_dead_attempt_s_leftovers_aside(
    local_repo: Path, home: Path
) -> None:
    """Killed between a write and its commit: the next attempt does not build on the
    half-done write; it is kept on a ref the prompt names, and SPEC.md says what the
    branch says (a box checked without its commit is open again)."""
    item = make_item(str(local_repo))
    first = Workspace.prepare(item, home=home)
    head = first.head_sha()
    (first.path / "half-done.py").write_text("pass\n")
    (first.path / "README.md").write_text("edited but not committed\n")
    (first.path / "SPEC.md").write_text(SPEC.replace("- [ ] Create", "- [x] Create"))

    again = Workspace.prepare(item, home=home)

    assert again.path == first.path and again.branch == first.branch
    assert again.head_sha() == head and not again.has_uncommitted_changes()
    assert not (again.path / "half-done.py").exists()
    assert "- [ ] Create" in (again.path / "SPEC.md").read_text()
    assert again.leftovers is not None and again.leftovers.startswith("refs/factory-leftovers/")
    saved = git(again.path, "show", "--name-only", "--format=", again.leftovers).split()
    assert sorted(saved) == ["README.md", "half-done.py"]
    assert git(again.path, "show", f"{again.leftovers}:half-done.py") == "pass\n"


def test_tasks_recorded_on_the_branch_are_checked_when_the_spec_is_rebuilt(
    local_repo: Path, home: Path
) -> None:
    """Killed between a commit and its checkbox: the commit's trailer checks the box."""
    item = make_item(str(local_repo))
    first = Workspace.prepare(item, home=home)
    (first.path / "hello.py").write_text("print('hi')\n")
    git(first.path, "add", "hello.py")
    git(first.path, "commit", "--quiet", "-m", "feat: hello", "-m", "Factory-Task: 1")

    again = Workspace.prepare(item, home=home)

    assert again.recorded_tasks() == {1}
    spec = (again.path / "SPEC.md").read_text()
    assert "- [x] Create" in spec and spec.count("- [x]") == 1


def test_prepare_recreates_a_broken_worktree(local_repo: Path, home: Path) -> None:
    item = make_item(str(local_repo))
    first = Workspace.prepare(item, home=home)
    (first.path / "work.py").write_text("w = 1\n")
    assert first.commit_wip("WIP: work")
    (first.path / ".git").unlink()  # a crash left a directory git no longer knows

    again = Workspace.prepare(item, home=home)

    assert again.head_sha() == first.head_sha()
    assert (again.path / "work.py").read_text() == "w = 1\n"
    assert not again.has_uncommitted_changes()


def test_retry_on_another_host_continues_from_the_pushed_branch(
        standin: GitHubStandin, tmp_path: Path) -> None:
    item = make_item(standin.git_url(REPO))
    first = Workspace.prepare(item, home=tmp_path / "host-a", github_token=standin.token)
    (first.path / "step1.py").write_text("one = 1\n")
    assert first.commit_wip("WIP: step 1")
    first.push()
    standin.commit(REPO, {"upstream.txt": "moved on\n"})  # main moves meanwhile

    second = Workspace.prepare(item, home=tmp_path / "host-b", github_token=standin.token)

    assert second.head_sha() == first.head_sha()
    assert second.base_sha == first.base_sha
    assert second.changed_files() == ["step1.py"]


# -- the mirror ---------------------------------------------------------------------------


def test_second_item_fetches_into_the_same_mirror(
        local_repo: Path, home: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ai_factory.worker")
    Workspace.prepare(make_item(str(local_repo)), home=home)
    [mirror] = mirrors(home)
    inode = mirror.stat().st_ino
    (local_repo / "new.txt").write_text("upstream change\n")
    git(local_repo, "add", "new.txt")
    git(local_repo, "commit", "--quiet", "-m", "upstream change")
    upstream_head = git(local_repo, "rev-parse", "HEAD").strip()

    second = Workspace.prepare(make_item(str(local_repo)), home=home)

    assert mirrors(home) == [mirror] and mirror.stat().st_ino == inode
    events = [r.getMessage().split()[0] for r in caplog.records]
    assert events.count("workspace.mirror_created") == 1
    assert events.count("workspace.mirror_fetched") == 1
    assert second.base_sha == upstream_head
    assert (second.path / "new.txt").is_file()


def _prepare_in_child(repo: str, home: str) -> str:
    return str(Workspace.prepare(make_item(repo), home=Path(home)).path)


@pytest.mark.parametrize("runner", ["threads", "processes"])
def test_racing_prepares_share_one_mirror(standin: GitHubStandin, home: Path,
                                          runner: str) -> None:
    url = standin.git_url(REPO)
    if runner == "processes":
        with multiprocessing.get_context("spawn").Pool(2) as pool:
            paths = pool.starmap(_prepare_in_child, [(url, str(home))] * 2)
    else:
        results: list[str] = []
        errors: list[BaseException] = []
        barrier = threading.Barrier(2)

        def run() -> None:
            barrier.wait()
            try:
                results.append(_prepare_in_child(url, str(home)))
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=run) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        paths = results

    assert len(set(paths)) == 2
    assert [m.suffix for m in mirrors(home)] == [".git"]
    for path in paths:
        assert (Path(path) / "README.md").is_file()
        assert git(Path(path), "status", "--porcelain") == ""


# -- bad input ----------------------------------------------------------------------------


@pytest.mark.parametrize("branch", ["--upload-pack=touch MARKER", "-b", "main;touch MARKER",
                                    "a..b", "@{-1}", "feature branch"])
def test_hostile_base_branch_fails_before_git_runs(local_repo: Path, home: Path, tmp_path: Path,
                                                   branch: str) -> None:
    marker = tmp_path / "pwned"
    with pytest.raises(WorkspaceError, match="not a valid branch name"):
        Workspace.prepare(make_item(str(local_repo), base_branch=branch.replace("MARKER", str(marker))),
                          home=home)
    assert not marker.exists()
    assert mirrors(home) == []


def test_hostile_repo_fails_cleanly(home: Path, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    hostile = [
        str(tmp_path / f"repo;touch {marker}"),
        f"--upload-pack=touch {marker}",
        f"ext::sh -c touch% {marker}",
        f"fd::3 ;touch {marker}",
        f"ssh://-oProxyCommand=touch%20{marker}/x",
        "https://user:hunter2secret@example.com/acme/widgets.git",
    ]
    for repo in hostile:
        with pytest.raises(WorkspaceError) as caught:
            Workspace.prepare(make_item(repo), home=home)
        assert "hunter2secret" not in str(caught.value)
    assert not marker.exists()
    assert mirrors(home) == []


def test_repo_path_with_shell_characters_is_just_a_path(tmp_path: Path, home: Path) -> None:
    marker = tmp_path / "pwned"
    upstream = make_local_repo(tmp_path / f"odd;touch {marker};$(touch {marker})")
    workspace = Workspace.prepare(make_item(str(upstream)), home=home)
    assert (workspace.path / "README.md").is_file()
    assert not marker.exists()


def test_missing_base_branch(local_repo: Path, home: Path) -> None:
    with pytest.raises(WorkspaceError) as caught:
        Workspace.prepare(make_item(str(local_repo), base_branch="release/9"), home=home)
    message = str(caught.value)
    assert "base branch 'release/9' does not exist" in message and "main" in message


def test_missing_local_repo(tmp_path: Path, home: Path) -> None:
    with pytest.raises(WorkspaceError, match="does not exist"):
        Workspace.prepare(make_item(str(tmp_path / "nowhere")), home=home)


def test_missing_remote_repo(standin: GitHubStandin, home: Path) -> None:
    url = standin.git_url(REPO).replace("widgets", "gadgets")
    with pytest.raises(WorkspaceError, match="cannot fetch .*gadgets.*not found"):
        Workspace.prepare(make_item(url), home=home, github_token=standin.token)
    assert mirrors(home) == []  # no half-made mirror left behind


# -- commits and push ---------------------------------------------------------------------


def test_commit_wip_commits_everything_but_spec_and_ai(local_repo: Path, home: Path) -> None:
    workspace = Workspace.prepare(make_item(str(local_repo)), home=home)
    assert not workspace.commit_wip("WIP: nothing yet")
    (workspace.path / "src" / "app.py").write_text("print('hello')\n")
    (workspace.path / "src" / "new.py").write_text("n = 1\n")
    (workspace.path / "README.md").unlink()
    (workspace.path / "SPEC.md").write_text(SPEC.replace("[ ]", "[x]"))
    (workspace.path / ".ai").mkdir(exist_ok=True)
    (workspace.path / ".ai" / "learnings.md").write_text("learned\n")

    assert workspace.has_uncommitted_changes()
    assert workspace.commit_wip("WIP: iteration 3")
    assert not workspace.has_uncommitted_changes()
    assert sorted(workspace.changed_files()) == ["README.md", "src/app.py", "src/new.py"]
    assert git(workspace.path, "log", "-1", "--format=%s").strip() == "WIP: iteration 3"

    workspace.push()
    branch = workspace.branch
    assert git(local_repo, "rev-parse", branch).strip() == workspace.head_sha()
    assert git(local_repo, "show", f"{branch}:src/new.py") == "n = 1\n"
    assert "SPEC.md" not in git(local_repo, "ls-tree", "-r", "--name-only", branch).split()


def test_commits_work_on_a_machine_without_git_identity(
        local_repo: Path, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "empty-home"))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", "/dev/null")
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    workspace = Workspace.prepare(make_item(str(local_repo)), home=home)
    (workspace.path / "x.py").write_text("x = 1\n")
    assert workspace.commit_wip("WIP")
    assert git(workspace.path, "log", "-1", "--format=%an <%ae>").strip() == \
        "AI Factory <factory@localhost>"


def test_push_needs_the_token_and_never_shows_it(
        standin: GitHubStandin, home: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    item = make_item(standin.git_url(REPO))
    anonymous = Workspace.prepare(item, home=home)  # reads are anonymous on the stand-in
    (anonymous.path / "feature.py").write_text("f = 1\n")
    assert anonymous.commit_wip("WIP: feature")

    with pytest.raises(WorkspaceError, match="authentication failed.*GITHUB_TOKEN is not set"):
        anonymous.push()
    assert anonymous.branch not in standin.branches(REPO)

    wrong = Workspace.prepare(item, home=home, github_token="ghp_" + "x" * 36)
    with pytest.raises(WorkspaceError, match="GITHUB_TOKEN was refused") as refused:
        wrong.push()
    assert "x" * 36 not in str(refused.value)

    authorised = Workspace.prepare(item, home=home, github_token=standin.token)
    authorised.push()
    assert standin.branches(REPO)[authorised.branch] == authorised.head_sha()
    assert standin.read_file(REPO, authorised.branch, "feature.py") == b"f = 1\n"
    assert standin.read_file(REPO, authorised.branch, "SPEC.md") is None
    assert set(standin.branches(REPO)) == {"main", authorised.branch}  # only our branch pushed

    for record in caplog.records:
        assert standin.token not in record.getMessage()
        assert "x" * 36 not in record.getMessage()
    assert standin.token not in repr(authorised)


def test_push_drops_credential_config_written_into_the_repository(
        standin: GitHubStandin, home: Path, tmp_path: Path) -> None:
    """An agent can write the shared git config; it must not be able to catch the token."""
    leak = tmp_path / "leaked"
    workspace = Workspace.prepare(make_item(standin.git_url(REPO)), home=home,
                                  github_token=standin.token)
    (workspace.path / "f.py").write_text("f = 1\n")
    assert workspace.commit_wip("WIP")
    host = standin.web_url
    git(workspace.path, "config", f"credential.{host}.helper", f"!tee {leak} >/dev/null; true")
    git(workspace.path, "config", "--add", "remote.origin.url", "http://127.0.0.1:9/evil.git")
    hooks = workspace.path / ".husky"  # what `npm install` with husky sets up
    hooks.mkdir()
    (hooks / "pre-push").write_text(f"#!/bin/sh\nenv > {leak}\n")
    (hooks / "pre-push").chmod(0o755)
    git(workspace.path, "config", "core.hooksPath", ".husky")

    workspace.push()  # origin is reset to the item's repository; the rest of it is dropped
    assert standin.branches(REPO)[workspace.branch] == workspace.head_sha()
    assert not leak.exists()
    assert git(workspace.path, "config", "--local", "--get-regexp", "credential|hookspath",
               check=False) == ""


def test_remove_keeps_the_mirror(local_repo: Path, home: Path) -> None:
    workspace = Workspace.prepare(make_item(str(local_repo)), home=home)
    workspace.remove()
    assert not workspace.path.exists()
    [mirror] = mirrors(home)
    assert workspace.branch not in git(mirror, "worktree", "list")


def test_a_recycled_worktree_starts_pristine(tmp_path: Path, home: Path,
                                             caplog: pytest.LogCaptureFixture) -> None:
    """The next item may reuse a finished item's files, but sees nothing of its work."""
    caplog.set_level(logging.INFO, logger="ai_factory.worker")
    upstream = make_local_repo(tmp_path / "upstream", {
        ".gitignore": "build/\n", "SPEC.md": "tracked spec\n", "src/app.py": "print('hi')\n"})
    first_item = make_item(str(upstream), spec="# First\n")
    first = Workspace.prepare(first_item, home=home)
    (first.path / "src" / "app.py").write_text("print('first')\n")
    assert first.commit_wip("first item's work")
    (first.path / "src" / "app.py").write_text("uncommitted\n")
    (first.path / "stray.txt").write_text("untracked\n")
    (first.path / "build").mkdir()
    (first.path / "build" / "out.bin").write_text("ignored\n")
    first.write_file("CLAUDE.md", "first item's instructions\n")
    first.remove()

    second = Workspace.prepare(make_item(str(upstream)), home=home)

    assert any("workspace.worktree_recycled" in r.getMessage() for r in caplog.records)
    assert second.head_sha() == second.base_sha == git(upstream, "rev-parse", "main").strip()
    assert git(second.path, "symbolic-ref", "HEAD").strip() == f"refs/heads/{second.branch}"
    assert (second.path / "src" / "app.py").read_text() == "print('hi')\n"
    for leftover in ("stray.txt", "build", "CLAUDE.md"):
        assert not (second.path / leftover).exists()
    assert (second.path / "SPEC.md").read_text() == SPEC
    assert not second.has_uncommitted_changes()
    (second.path / "CLAUDE.md").write_text("a real file this time\n")
    assert second.commit_wip("second item's work")
    assert second.changed_files() == ["CLAUDE.md"]

    retry = Workspace.prepare(first_item, home=home)  # the first item's branch is free again
    assert (retry.path / "src" / "app.py").read_text() == "print('first')\n"
    assert (retry.path / "SPEC.md").read_text() == "# First\n"


@pytest.mark.parametrize(("request_text", "answered"), [
    ("protocol=https\nhost=github.com\npath=acme/widgets.git\n\n", True),
    ("protocol=https\nhost=evil.example\n\n", False),  # a redirect elsewhere
    ("protocol=ssh\nhost=github.com\n\n", False),
])
def test_credential_helper_answers_only_for_its_host(request_text: str, answered: bool) -> None:
    env = {"PATH": os.environ["PATH"], "FACTORY_GIT_TOKEN": "helper-test-token",
           "FACTORY_GIT_CREDENTIAL_HOST": "github.com"}
    argv = shlex.split(credential_helper().removeprefix("!")) + ["get"]
    out = subprocess.run(argv, input=request_text, env=env, capture_output=True, text=True,
                         check=True).stdout
    expected = "username=x-access-token\npassword=helper-test-token\n" if answered else ""
    assert out == expected
    store = subprocess.run(argv[:-1] + ["store"], input=request_text, env=env,
                           capture_output=True, text=True, check=True)
    assert store.stdout == ""


def test_an_attempt_never_shares_the_worktree_with_a_live_process(
    local_repo: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A previous attempt's process (stopped, not yet killed) holds the worktree: the new
    attempt waits; once that process is gone, the worktree is free at once."""
    import sys

    from ai_factory.worker import workspace as workspace_module

    item = make_item(str(local_repo))
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from pathlib import Path; from ai_factory.core.models import WorkItem;"
         " from ai_factory.worker.workspace import Workspace;"
         " w = Workspace.prepare(WorkItem.model_validate_json(sys.argv[1]), home=Path(sys.argv[2]));"
         " print('ready', flush=True); time.sleep(600)",
         item.model_dump_json(by_alias=True), str(home)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        monkeypatch.setattr(workspace_module, "WORKTREE_LOCK_WAIT_S", 1.0)
        with pytest.raises(WorkspaceError, match="another process still works"):
            Workspace.prepare(item, home=home)
    finally:
        holder.kill()
        holder.wait()
    assert Workspace.prepare(item, home=home).path.is_dir()
