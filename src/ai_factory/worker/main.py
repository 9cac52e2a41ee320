"""Composition root of the worker process (`factory worker`): one work item, start to end.

The spawner's contract (docs/state-machine.md#worker-processes): WORKER_ID,
WORKER_TOKEN, WORK_ITEM (the item as camelCase JSON) and ORCHESTRATOR_URL. Without
WORKER_ID (someone runs `factory worker` by hand) the worker registers with
FACTORY_API_TOKEN and the orchestrator claims the item for it; WORK_ITEM may then be
just the item's id.

Sequence: register → heartbeat → the agent's user (when root) → workspace (mirror +
worktree, SPEC.md, .ai/) → gate → learnings → the loop → stop what the agent left
running → then `ending.Ending` by outcome: deliver when done, push the work so far as
WIP when stuck or failed, then one final report.

The process is not dumpable (its memory and /proc entries are closed to processes of
its own user, the agent's tools among them) and is the subreaper of everything it
starts (`reaper`). Running as root, it runs the agent as FACTORY_AGENT_USER
(`agent_user`), which cannot read root's processes or files at all.
A lease lost (409: cancelled, or given to another worker) or a stop signal stops
the agent; nothing is pushed, nothing reported, the worktree is left alone.

Exit codes: 0 completed, 1 failed, 2 stuck, 3 lease lost or stopped,
4 could not register.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from uuid import UUID

from pydantic import SecretStr, ValidationError

from ai_factory.core.errors import ApiUnreachableError, ConfigError, FactoryError
from ai_factory.core.launch_secrets import read_launch_secrets
from ai_factory.core.logging import configure_logging, register_secret
from ai_factory.core.models import WorkItem
from ai_factory.core.processes import make_undumpable
from ai_factory.core.settings import Settings, load_settings
from ai_factory.worker import reaper
from ai_factory.worker.client import (
    Heartbeat,
    LeaseLostError,
    OrchestratorClient,
    Progress,
)
from ai_factory.worker.exits import (  # noqa: F401 - the exit codes are part of main's API
    EXIT_COMPLETED,
    EXIT_FAILED,
    EXIT_STOPPED,
    EXIT_STUCK,
    EXIT_UNREGISTERED,
)

# Only what registering needs is imported above; the rest (workspace, loop, gate, delivery,
# githubkit, the SDK) once the worker has registered: from spawn to registered is start-up
# time, which an item waits through (bench/dispatch.py --worker real).
if TYPE_CHECKING:
    from ai_factory.worker.agent_user import AgentUser
    from ai_factory.worker.ending import Ending
    from ai_factory.worker.run_outcome import LimitPolicy
    from ai_factory.worker.workspace import Workspace

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LaunchEnv:
    """What the spawner hands a worker through its environment."""

    orchestrator_url: str
    worker_id: UUID | None = None
    token: str | None = field(default=None, repr=False)
    item: WorkItem | None = None
    item_id: str | None = None  # WORK_ITEM was only an id (a worker started by hand)

    @classmethod
    def from_environ(
        cls, environ: Mapping[str, str], *, settings: Settings, secrets: Mapping[str, str] | None = None
    ) -> LaunchEnv:
        """`secrets` are what `read_launch_secrets` took from the spawner (a worker started by
        hand may set WORKER_TOKEN itself)."""
        raw_item = environ.get("WORK_ITEM", "").strip()
        if not raw_item:
            raise ConfigError("WORK_ITEM: not set (the work item as JSON, or its id)")
        item: WorkItem | None = None
        item_id: str | None = None
        if raw_item.startswith("{"):
            try:
                item = WorkItem.model_validate_json(raw_item)
            except ValidationError as exc:
                raise ConfigError(
                    f"WORK_ITEM: not a work item ({exc.errors()[0]['msg']})"
                ) from None
        else:
            item_id = raw_item
        worker_id = None
        if raw_id := environ.get("WORKER_ID", "").strip():
            try:
                worker_id = UUID(raw_id)
            except ValueError:
                raise ConfigError(f"WORKER_ID: not a UUID (got {raw_id!r})") from None
        token = (secrets or {}).get("WORKER_TOKEN") or environ.get("WORKER_TOKEN") or None
        if worker_id is not None and token is None:
            raise ConfigError(
                "WORKER_TOKEN: not given (a spawned worker gets it through FACTORY_SECRETS_FD or"
                " FACTORY_SECRETS_FILE, and proves itself with it)"
            )
        if worker_id is None and settings.api_token is None:
            log.info("worker.unspawned (no WORKER_ID): registering without a token")
        return cls(settings.api_url, worker_id, token, item, item_id)


@dataclass(frozen=True)
class WorkerOptions:
    """Knobs the environment does not carry (tests shrink them)."""

    policy: LimitPolicy = field(default_factory=lambda: _limit_policy())
    agent_env: Mapping[str, str] = field(default_factory=dict)  # added on top (the sim, in tests)


class WorkerProcess:
    """One worker run. `run()` returns the process exit code."""

    def __init__(
        self,
        *,
        settings: Settings,
        launch: LaunchEnv,
        options: WorkerOptions | None = None,
        stop: asyncio.Event | None = None,
    ) -> None:
        self.settings = settings
        self.launch = launch
        self.options = options or WorkerOptions(
            policy=_limit_policy(reset_margin_s=settings.limit_reset_margin_seconds)
        )
        self.stop = stop or asyncio.Event()
        self.github_token = (
            settings.github_token.get_secret_value() if settings.github_token else None
        )
        self.client = OrchestratorClient(
            base_url=launch.orchestrator_url,
            worker_id=launch.worker_id,
            token=launch.token,
        )
        self.progress = Progress()
        self.heartbeat = Heartbeat(
            client=self.client, progress=self.progress, interval_s=settings.heartbeat_interval_seconds
        )
        self.item: WorkItem | None = launch.item
        self.ending: Ending | None = None  # once registered
        self.agent: AgentUser | None = None  # who the agent runs as, when not this process's user

    async def run(self) -> int:
        for secret in (self.launch.token, *self.settings.secret_values()):
            register_secret(secret)
        try:
            if not await self._register():
                return EXIT_UNREGISTERED
            watcher = asyncio.create_task(self._watch_lease())
            self.heartbeat.start()
            try:
                return await self._work()
            except LeaseLostError:
                log.warning("worker.stopped reason=lease_lost")
                return EXIT_STOPPED
            except ApiUnreachableError as exc:
                log.error("worker.report_undelivered error=%s", exc)
                return EXIT_FAILED
            except Exception as exc:  # a bug or an OS error: say so rather than vanish
                log.exception("worker.crashed")
                assert self.ending is not None
                return await self.ending.fail(f"worker error: {type(exc).__name__}: {exc}", 0)
            finally:
                watcher.cancel()
                await self.heartbeat.stop()
                await self._stop_agent_leftovers()
        finally:
            await self.client.close()

    async def _register(self) -> bool:
        try:
            if self.item is None:
                assert self.launch.item_id is not None
                self.item = await self.client.get_item(
                    self.launch.item_id, admin_token=self.settings.api_token
                )
            response = await self.client.register(
                self.item.id, host=socket.gethostname(), admin_token=self.settings.api_token
            )
        except FactoryError as exc:
            log.error("worker.register_failed error=%s", exc)
            return False
        register_secret(response.token)
        from ai_factory.worker.ending import Ending  # registered: now the rest (see the imports)

        item = self.item
        self.ending = Ending(item=item, client=self.client, heartbeat=self.heartbeat,
                             github_token=self.github_token,
                             github_api_url=self.settings.github_api_url)  # fmt: skip
        log.info("worker.started worker=%s item=%s repo=%s title=%s",
                 response.worker_id, item.id, item.repo, item.title)  # fmt: skip
        return True

    async def _watch_lease(self) -> None:
        await self.client.lease_lost.wait()
        log.warning("worker.stopping reason=lease_lost detail=%s", self.client.lease_lost_reason)
        self.stop.set()

    async def _stop_agent_leftovers(self) -> None:
        uid = self.agent.uid if self.agent is not None else None
        await asyncio.to_thread(reaper.stop_leftovers, uid=uid)

    async def _work(self) -> int:
        from ai_factory.worker.agent.env import agent_env
        from ai_factory.worker.agent_user import AgentUser
        from ai_factory.worker.followup import merge_base_in
        from ai_factory.worker.gate import CONFIG_FILE, QualityGate
        from ai_factory.worker.hooks import FileLocks
        from ai_factory.worker.learnings import load_learnings
        from ai_factory.worker.loop import LoopConfig, LoopOutcome, RalphLoop
        from ai_factory.worker.workspace import Workspace, WorkspaceError

        item, ending = self.item, self.ending
        assert item is not None and ending is not None
        try:
            self.agent = await asyncio.to_thread(AgentUser.for_worker, self.settings)
        except ConfigError as exc:
            return await ending.fail(str(exc), 0)
        if self.agent is not None:
            log.info("worker.agent_user user=%s uid=%s", self.agent.name, self.agent.uid)
        try:
            workspace = await asyncio.to_thread(
                Workspace.prepare,
                item,
                home=self.settings.factory_home,
                github_token=self.github_token,
                agent=self.agent,
            )
        except WorkspaceError as exc:
            return await ending.fail(f"could not prepare the workspace: {exc}", 0)
        log.info("workspace.ready path=%s branch=%s", workspace.path, workspace.branch)
        try:
            conflicts = await asyncio.to_thread(merge_base_in, workspace, item)
        except WorkspaceError as exc:
            return await ending.fail(f"could not merge {item.base_branch}: {exc}", 0, workspace)
        base_env = os.environ
        _set_aside_stale_stuck_note(workspace)
        try:
            gate = QualityGate.resolve(
                config_text=await asyncio.to_thread(workspace.file_at_base, CONFIG_FILE),
                configured=self.settings.factory_test_command,
                timeout_s=self.settings.gate_timeout_seconds,
                env={**agent_env(base_env), **self.options.agent_env},
                run_as=self.agent,
            )
        except ConfigError as exc:
            return await ending.fail(f"quality gate configuration: {exc}", 0, workspace)
        if gate is not None:
            log.info("gate.configured command=%s source=%s", gate.command, gate.source)
        learnings = await load_learnings(
            self.client, repo=item.repo, spec=item.spec, root=workspace.path
        )
        locks = FileLocks(client=self.client, root=workspace.path)
        try:
            # Imported here, after registering: the SDK takes most of a second to import.
            from ai_factory.worker.agent.drivers import build_driver

            driver = build_driver(self.settings, locks=locks, base_env=base_env,
                                  extra_env=self.options.agent_env, agent=self.agent)  # fmt: skip
        except FactoryError as exc:
            return await ending.fail(str(exc), 0, workspace)
        loop = RalphLoop(
            workspace=workspace,
            driver=driver,
            client=self.client,
            heartbeat=self.heartbeat,
            gate=gate,
            locks=locks,
            learnings=learnings,
            config=LoopConfig(
                max_iterations=self.settings.max_iterations,
                stuck_after=self.settings.stuck_after,
                policy=self.options.policy,
                max_iteration_cost_usd=self.settings.max_iteration_cost_usd,
                max_item_cost_usd=self.settings.max_item_cost_usd,
            ),
            stop=self.stop,
            notes=_leftover_notes(workspace) + _conflict_notes(item, conflicts),
        )
        try:
            result = await loop.run()
            await self._stop_agent_leftovers()  # nothing of the agent's runs from here on
            if result.outcome is LoopOutcome.CANCELLED:
                log.warning("worker.stopped iterations=%s (nothing pushed, nothing reported)",
                            result.iterations)  # fmt: skip
                return EXIT_STOPPED
            return await ending.finish(workspace, result)
        finally:
            await locks.release_all()

def _conflict_notes(item: WorkItem, conflicts: list[str]) -> list[str]:
    if not conflicts:
        return []
    return [(
        f"the factory started merging {item.base_branch} into this branch and git left"
        f" conflicts in: {', '.join(conflicts[:50])}. Resolve every conflict marker, run the"
        " tests, then conclude the merge with `git commit` (do not rebase, do not reset)"
    )]


def _limit_policy(**knobs: float) -> LimitPolicy:
    from ai_factory.worker.run_outcome import LimitPolicy

    return LimitPolicy(**knobs)


def _leftover_notes(workspace: Workspace) -> list[str]:
    if workspace.leftovers is None:
        return []
    return [(
        "an earlier attempt was interrupted before it committed; its uncommitted changes were"
        f" NOT kept in the worktree but saved at `{workspace.leftovers}`"
        f" (`git diff HEAD {workspace.leftovers}` shows them). Start from the last commit;"
        " reuse them only where they are right"
    )]


def _set_aside_stale_stuck_note(workspace: Workspace) -> None:
    """A retried item starts over: an earlier attempt's stuck note must not stop it at once."""
    from ai_factory.worker import agent_files
    from ai_factory.worker.progress import STUCK_FILE

    agent_files.rename(workspace.path, STUCK_FILE, "stuck.previous.md")


async def run_worker(
    settings: Settings, launch: LaunchEnv, *, options: WorkerOptions | None = None
) -> int:
    """Run one worker in this event loop; SIGTERM / SIGINT stop it without reporting.

    The first signal asks the loop to stop at its next step; a second one stops what runs
    now (the agent, a gate, a wait), ending the agent and the gate with it. A git command
    already running (a clone, a push) runs to its end first; a push cut short there is
    recovered by the next attempt (docs/state-machine.md)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    main_task = asyncio.current_task()
    signals = 0

    def on_signal() -> None:
        nonlocal signals
        signals += 1
        if signals == 1:
            stop.set()
        elif main_task is not None:
            log.warning("worker.stopping_now (a second signal)")
            main_task.cancel()

    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, on_signal)
    worker = WorkerProcess(settings=settings, launch=launch, options=options, stop=stop)
    try:
        return await worker.run()
    except asyncio.CancelledError:
        if signals < 2:
            raise
        return EXIT_STOPPED


def main(*, item: str | None = None) -> int:
    """The worker process: settings and logging once, then `run_worker`; the exit code.

    `item` (``factory worker --item ID``) stands in for WORK_ITEM.
    """
    make_undumpable()  # the worker's tokens live in its memory
    reaper.become_subreaper()  # whatever the agent starts stays ours to stop
    secrets = read_launch_secrets(os.environ)  # before anything else can see the descriptor
    settings = load_settings()
    if github_token := secrets.get("GITHUB_TOKEN"):
        settings = settings.model_copy(update={"github_token": SecretStr(github_token)})
    configure_logging(settings.log_level, stream=sys.stdout)  # the orchestrator captures stdout
    logging.getLogger("claude_agent_sdk").setLevel(logging.WARNING)  # "Using bundled CLI" per run
    environ = dict(os.environ)
    if item:
        environ["WORK_ITEM"] = item
    launch = LaunchEnv.from_environ(environ, settings=settings, secrets=secrets)
    return asyncio.run(run_worker(settings, launch))
