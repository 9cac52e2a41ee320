"""Intake wired to a GitHub stand-in, a real orchestrator and the scripted model: `Rig`.

`Rig` holds them and the helpers the intake tests share: build an intake service (over
the API, as `factory intake` runs), open and label issues, deliver webhooks, and play a
worker that finishes, fails or gets stuck through the worker API. `intake_settings` are
the settings those tests run intake with. The fixtures that build a `Rig` are in
tests/integration/intake/conftest.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from ai_factory.core.settings import Settings
from ai_factory.intake.github import GitHubIntakeClient
from ai_factory.intake.service import IntakeService
from ai_factory.intake.spec_gen import ClaudeSpecGenerator, SpecGenerator
from ai_factory.intake.submitter import ApiSubmitter
from ai_factory.sim import SimServer, sim_env
from tests.github_standin import GitHubStandin, send_webhook
from tests.support.server import ServerThread
from tests.support.settings import make_settings

REPO = "acme/widgets"
SECRET = "It's a Secret to Everybody"
MAINTAINER = "maria"
READER = "rita"
TASKS = "- [ ] Create `hello.txt` containing `hello`\n- [ ] Append `bye` to `hello.txt`\n"


@dataclass
class Rig:
    standin: GitHubStandin
    api: ServerThread
    settings: Settings
    sim: SimServer
    tmp_path: Path
    submitters: list[ApiSubmitter]

    # --- building intake ---

    def github(self, **overrides: Any) -> GitHubIntakeClient:
        values: dict[str, Any] = {
            "token": self.standin.token,
            "base_url": self.standin.api_url,
            "write_interval_s": self.settings.intake_write_interval_s,
            "backoff_s": 0.05,
            "server_backoff_s": 0.01,
        }
        values.update(overrides)
        return GitHubIntakeClient(**values)

    def generator(self) -> SpecGenerator:
        return ClaudeSpecGenerator(
            env=sim_env(self.sim.url, config_dir=str(self.tmp_path / "claude"))
        )

    def service(
        self,
        *,
        settings: Settings | None = None,
        github: GitHubIntakeClient | None = None,
        generator: SpecGenerator | None = None,
    ) -> IntakeService:
        """Intake as `factory intake` runs it: over the API, with the sim as spec writer."""
        settings = settings or self.settings
        submitter = ApiSubmitter(base_url=self.api.url, token=settings.api_token)
        self.submitters.append(submitter)
        return IntakeService.build(
            settings,
            submitter=submitter,
            github=github or self.github(),
            generator=generator or self.generator(),
        )

    # --- GitHub side ---

    def open_issue(
        self,
        title: str = "Greeting",
        body: str = TASKS,
        *,
        labels: tuple[str, ...] = ("ai-factory",),
        by: str = MAINTAINER,
    ) -> int:
        return self.standin.create_issue(REPO, title, body, labels=labels, author=by, labeled_by=by)

    def labels(self, number: int) -> list[str]:
        return self.standin.labels(REPO, number)

    def comments(self, number: int) -> list[str]:
        return [c.body for c in self.standin.comments(REPO, number)]

    def deliver(
        self,
        action: str,
        number: int,
        *,
        label: str | None = None,
        sender: str = MAINTAINER,
        delivery_id: str | None = None,
        secret: str | None = SECRET,
    ):
        payload = self.standin.issues_webhook_payload(
            REPO, number, action, sender=sender, label=label
        )
        return send_webhook(
            f"{self.api.url}/webhooks/github", "issues", payload, secret, delivery_id
        )

    # --- factory side ---

    def http(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """A plain request to the orchestrator (the tests' own thread blocks; servers do not)."""
        return httpx.request(method, f"{self.api.url}{path}", **kwargs)

    def items(self, number: int) -> list[dict[str, Any]]:
        response = httpx.get(
            f"{self.api.url}/api/work", params={"source": "github", "sourceId": str(number)}
        )
        response.raise_for_status()
        return response.json()

    def item(self, number: int) -> dict[str, Any]:
        found = self.items(number)
        assert len(found) == 1, found
        return found[0]

    def as_worker(self, item_id: str, outcome: str, **body: Any) -> dict[str, Any]:
        """Register for the item as an external worker, then report `outcome` (complete, ...)."""
        registered = httpx.post(
            f"{self.api.url}/api/worker/register", json={"workItemId": item_id}
        ).json()
        headers = {"Authorization": f"Bearer {registered['token']}"}
        response = httpx.post(
            f"{self.api.url}/api/worker/{registered['workerId']}/{outcome}",
            json=body,
            headers=headers,
        )
        response.raise_for_status()
        return response.json()


def intake_settings(
    tmp_path: Path, database_url: str, standin: GitHubStandin, **overrides: Any
) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "github_token": standin.token,
        "github_api_url": standin.api_url,
        "repos": [REPO],
        "github_webhook_secret": SECRET,
        "intake_write_interval_s": 0.01,
        "max_workers": 0,
    }
    values.update(overrides)
    return make_settings(tmp_path, **values)
