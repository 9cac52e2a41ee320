"""One spelling per repository (no I/O but resolving local paths)."""

import pytest

from ai_factory.core.errors import InvalidInputError
from ai_factory.core.repos import canonical_repo, is_local


@pytest.mark.parametrize(
    "spellings",
    [
        ["https://github.com/acme/widgets.git", "https://GitHub.com/Acme/Widgets",
         "https://github.com/acme/widgets.git/", "https://github.com:443/acme//widgets.git"],
        ["git@github.com:acme/widgets.git", "git@GitHub.com:Acme/Widgets.git"],
        ["https://git.example/a/r.git", "https://git.example/a/r.git/",
         "https://git.example/x/../a/r.git", "https://GIT.example/a/./r.git"],
    ],
)  # fmt: skip
def test_spellings_of_one_repository_are_one(spellings: list[str]) -> None:
    assert len({canonical_repo(s) for s in spellings}) == 1


def test_local_paths_resolve_and_relative_ones_are_refused(tmp_path) -> None:
    repo = tmp_path / "r.git"
    repo.mkdir()
    (tmp_path / "link").symlink_to(repo)
    forms = [str(repo), f"{repo}/", f"{tmp_path}/x/../r.git", str(tmp_path / "link"), f"file://{repo}"]
    assert {canonical_repo(f) for f in forms} == {str(repo.resolve())}
    with pytest.raises(InvalidInputError, match="relative path"):
        canonical_repo("./r.git")
    with pytest.raises(InvalidInputError, match="relative path"):
        canonical_repo(".")


def test_case_is_kept_off_github() -> None:
    assert canonical_repo("https://git.example/Acme/Widgets.git") == "https://git.example/Acme/Widgets.git"


def test_what_counts_as_local() -> None:
    assert is_local("/srv/r") and is_local("./r") and is_local("file:///srv/r")
    assert not is_local("https://github.com/a/b") and not is_local("git@github.com:a/b.git")
