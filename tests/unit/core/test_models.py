import pytest
from pydantic import ValidationError

from ai_factory.core.models import CreateWorkItemInput, WorkerCompleteRequest


def test_wire_is_camel_case_and_python_is_snake_case() -> None:
    body = CreateWorkItemInput.model_validate(
        {"repo": "https://github.com/acme/w.git", "spec": "- [ ] x", "sourceId": "12", "baseBranch": "dev"}
    )
    assert body.source_id == "12" and body.base_branch == "dev"
    wire = body.to_wire()
    assert wire["sourceId"] == "12" and wire["baseBranch"] == "dev" and "source_id" not in wire


def test_complete_request_uses_reference_field_names() -> None:
    req = WorkerCompleteRequest.model_validate(
        {"prUrl": "x#y", "iterations": 2, "tokens": 5, "filesChanged": ["a"], "newLearnings": ["b"]}
    )
    assert req.files_changed == ["a"] and req.new_learnings == ["b"]


@pytest.mark.parametrize(
    "branch",
    ["--upload-pack=touch /tmp/pwned", "-x", "a..b", "has space", "x.lock", "a~1", "end/", "a//b", ""],
)
def test_dangerous_or_invalid_branch_names_are_refused(branch: str) -> None:
    with pytest.raises(ValidationError):
        CreateWorkItemInput(repo="r", spec="s", base_branch=branch)


@pytest.mark.parametrize("branch", ["main", "release/1.2", "feature/x_y-z", "v2.0"])
def test_ordinary_branch_names_pass(branch: str) -> None:
    assert CreateWorkItemInput(repo="r", spec="s", base_branch=branch).base_branch == branch


@pytest.mark.parametrize("repo", ["", "   ", "-oProxyCommand=x", "a\nb"])
def test_bad_repo_refs_are_refused(repo: str) -> None:
    with pytest.raises(ValidationError):
        CreateWorkItemInput(repo=repo, spec="s")
