"""Whose word intake takes: who may send an issue to the factory, and whose edits count.

- A person counts with write, maintain or admin permission on the repository; a `[bot]`
  only when listed in TRUSTED_BOTS (its permission does not count); an account GitHub no
  longer knows, never.
- The label: the latest `labeled` event for INTAKE_LABEL names who added it
  (`TrustGate.label`). Nobody else's word starts work.
- The text: what a trusted user labelled is what gets built. A later edit to the title or
  body by someone who does not count (`TrustGate.untrusted_edits`) means nobody trusted
  has seen the text now there, so intake does not act on it until a trusted user labels
  it again. GitHub stamps whole seconds, so an edit in the second of the label counts as
  after it: a maintainer does not review and label within one second.

Trust is read from GitHub (events, GraphQL edits, permissions), never from a webhook's
payload: a webhook only says when to look.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from ai_factory.intake.github import WRITE_ROLES, GitHubIntakeClient
from ai_factory.intake.models import ContentEdit, IssueText, LabelEvent, RepoInfo


@dataclass(frozen=True)
class Trust:
    trusted: bool
    actor: str | None
    why: str


def normalise_bot(name: str) -> str:
    name = name.strip().lower()
    return name if name.endswith("[bot]") else f"{name}[bot]"


class TrustGate:
    def __init__(self, *, github: GitHubIntakeClient, trusted_bots: Iterable[str]) -> None:
        self.github = github
        self.trusted_bots = frozenset(normalise_bot(b) for b in trusted_bots if b.strip())

    async def label(self, repo: RepoInfo, trigger: LabelEvent | None) -> Trust:
        """Does the label's `labeled` event come from someone whose word counts?"""
        if trigger is None or not trigger.actor:
            return Trust(False, None, "no labeled event names who added the label")
        return await self.actor(repo, trigger.actor, is_bot=trigger.actor_is_bot)

    async def actor(self, repo: RepoInfo, login: str | None, *, is_bot: bool) -> Trust:
        if not login:
            return Trust(False, None, "GitHub does not say who it was")
        if is_bot or login.lower().endswith("[bot]"):
            if normalise_bot(login) in self.trusted_bots:
                return Trust(True, login, "bot listed in TRUSTED_BOTS")
            return Trust(False, login, "bot not listed in TRUSTED_BOTS")
        permission = await self.github.permission(repo.full_name, login)
        return Trust(
            permission.permission in WRITE_ROLES or permission.role_name in WRITE_ROLES,
            login,
            f"permission {permission.role_name or permission.permission}",
        )

    async def untrusted_edits(
        self, repo: RepoInfo, text: IssueText, *, since: datetime
    ) -> list[ContentEdit]:
        """Edits to `text` at or after `since` (the label) by someone whose word does not count."""
        verdicts: dict[tuple[str | None, bool], bool] = {}
        found = []
        for edit in text.edits:
            if edit.at < since:
                continue
            who = (edit.editor.lower() if edit.editor else None, edit.editor_is_bot)
            if who not in verdicts:
                trust = await self.actor(repo, edit.editor, is_bot=edit.editor_is_bot)
                verdicts[who] = trust.trusted
            if not verdicts[who]:
                found.append(edit)
        return found
