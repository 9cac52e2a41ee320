"""Composition root of the orchestrator process (`factory up`, `factory orchestrator`).

Reads settings once, opens (or starts) the database, applies migrations, builds
the services and serves the API. Background components (scheduler, intake, ...)
run beside the server in the same event loop and stop when it stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import signal
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AsyncExitStack

import uvicorn

from ai_factory.core.db.connect import open_database
from ai_factory.core.errors import ConfigError
from ai_factory.core.settings import Settings
from ai_factory.orchestrator.api.app import create_app
from ai_factory.orchestrator.services import Services

log = logging.getLogger(__name__)

# A component gets the services and runs until cancelled.
Component = Callable[[Services], Awaitable[None]]


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a name other than localhost may resolve to anything
        return False


def check_exposure(settings: Settings) -> None:
    """Refuse to serve an open factory beyond this machine, unless asked to on purpose."""
    if settings.api_token or settings.factory_allow_open or is_loopback(settings.host):
        return
    raise ConfigError(
        f"HOST={settings.host} serves the API beyond this machine and FACTORY_API_TOKEN is not "
        "set: set FACTORY_API_TOKEN, or HOST=127.0.0.1, or FACTORY_ALLOW_OPEN=1 to serve an "
        "open factory anyway"
    )


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the orchestrator decides how to stop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def _reembed_learnings(services: Services) -> None:
    """After a change of FACTORY_EMBEDDER, give old learnings vectors from the new one."""
    try:
        await services.learnings.reembed()  # logs what it did
    except Exception:  # search still works (full-text) for learnings without a vector
        log.exception("learnings.reembed_failed")


def _log_component_end(task: asyncio.Task[None]) -> None:
    """A component (e.g. intake) that stops by itself must say why, not vanish."""
    if task.cancelled():
        return
    error = task.exception()
    if error is not None:
        log.error("orchestrator.component_failed component=%s error=%s", task.get_name(), error,
                  exc_info=error)  # fmt: skip
    else:
        log.warning("orchestrator.component_ended component=%s", task.get_name())


class Orchestrator:
    def __init__(self, settings: Settings, *, components: list[Component] | None = None) -> None:
        self.settings = settings
        self.components = components or []
        self._server: _Server | None = None
        self._services: Services | None = None
        self._stopping: asyncio.Task[None] | None = None

    def request_stop(self) -> None:
        """First signal: stop claiming, let workers finish for SHUTDOWN_GRACE_SECONDS, hand
        the rest back, stop. Second: skip the wait. Third: stop the server now."""
        if self._server is None or self._services is None:
            return
        if self._stopping is None:
            log.info("orchestrator.stopping")
            self._stopping = asyncio.get_running_loop().create_task(self._stop_gracefully())
        elif not self._server.should_exit:
            log.info("orchestrator.hurrying")
            self._services.runtime.hurry()
        else:
            self._server.force_exit = True

    async def _stop_gracefully(self) -> None:
        assert self._server is not None and self._services is not None
        try:
            await self._services.runtime.shutdown()
        except Exception:
            log.exception("orchestrator.shutdown_failed")
        finally:
            self._server.should_exit = True

    def _runtime_ended(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or self._server is None:
            return
        error = task.exception()
        if error is not None:
            log.error("orchestrator.runtime_failed error=%s", error, exc_info=error)
            self._server.should_exit = True

    async def run(self) -> None:
        check_exposure(self.settings)  # before the database: a refusal costs nothing
        async with AsyncExitStack() as stack:
            db = await stack.enter_async_context(open_database(self.settings))
            services = self._services = Services.build(self.settings, db)
            stack.push_async_callback(services.close)
            await services.runtime.lifecycle.spawner.check()  # a clear error before serving
            app = create_app(services)
            server = self._server = _Server(
                uvicorn.Config(
                    app,
                    host=self.settings.host,
                    port=self.settings.port,
                    log_config=None,
                    access_log=False,
                    timeout_graceful_shutdown=5,
                )
            )
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, self.request_stop)
            runtime = asyncio.create_task(services.runtime.run(), name="worker-runtime")
            runtime.add_done_callback(self._runtime_ended)
            tasks = [runtime, asyncio.create_task(_reembed_learnings(services), name="reembed")]
            for component in self.components:
                task = asyncio.create_task(
                    component(services), name=getattr(component, "__name__", "component")
                )
                task.add_done_callback(_log_component_end)
                tasks.append(task)
            log.info(
                "orchestrator.started url=http://%s:%s database=%s learnings_vectors=%s",
                self.settings.host,
                self.settings.port,
                "embedded" if self.settings.database_url is None else "external",
                services.learnings.vector_search,
            )
            try:
                await server.serve()
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                log.info("orchestrator.stopped")
