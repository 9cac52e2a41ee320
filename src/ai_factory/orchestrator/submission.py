"""What a submission must be before it is queued: checked at the door, one line each.

`SubmissionRules.admit` turns what a user, the dashboard or intake sent into what
the item stores: the repository in its one canonical spelling (`core.repos`), a
local repository only where LOCAL_REPO_ROOTS allows and only if it is a git
repository with the base branch, and a spec with at least one task checkbox.
A bad submission is refused (HTTP 422) before any worker is spawned for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from ai_factory.core.errors import InvalidInputError
from ai_factory.core.models import CreateWorkItemInput
from ai_factory.core.repos import GITHUB_HOSTS, LocalRepoPolicy, canonical_repo, is_local
from ai_factory.core.settings import Settings
from ai_factory.core.spec import parse_tasks


@dataclass(frozen=True)
class SubmissionRules:
    local: LocalRepoPolicy | None = None  # None: local paths are canonicalised, not checked
    github_hosts: frozenset[str] = GITHUB_HOSTS
    require_tasks: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> SubmissionRules:
        api_host = (urlsplit(settings.github_api_url).hostname or "").lower()
        hosts = GITHUB_HOSTS | ({api_host} if api_host and api_host != "api.github.com" else set())
        policy = LocalRepoPolicy(
            roots=tuple(settings.local_repo_roots), factory_home=settings.factory_home
        )
        return cls(local=policy, github_hosts=frozenset(hosts), require_tasks=True)

    def spelling(self, repo: str | None) -> str | None:
        """How items spell `repo` (for lookups): canonical when it can be, else as given."""
        if repo is None:
            return None
        try:
            return canonical_repo(repo, github_hosts=self.github_hosts)
        except InvalidInputError:
            return repo

    def admit(self, data: CreateWorkItemInput) -> CreateWorkItemInput:
        """`data` as it will be stored; `InvalidInputError` saying what is wrong otherwise."""
        repo = canonical_repo(data.repo, github_hosts=self.github_hosts)
        if self.local is not None and is_local(data.repo):
            self.local.check(repo, base_branch=data.base_branch)
        if self.require_tasks and parse_tasks(data.spec).total == 0:
            raise InvalidInputError(
                "spec: has no task checkboxes (write each task as a line '- [ ] ...')"
            )
        return data.model_copy(update={"repo": repo})
