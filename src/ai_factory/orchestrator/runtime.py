"""Composition root of the orchestrator process (`factory up`, `factory orchestrator`).

Reads settings once, opens (or starts) the database, applies migrations, builds
the services and serves the API. Background components (scheduler, intake, ...)
run beside the server in the same event loop and stop when it stops.

Before anything starts, three refusals cost nothing and say one line each: an open
factory beyond this machine (`check_exposure`), an address that cannot be listened
on (the API's socket is bound first, and handed to uvicorn), and workers that could
not run here (`worker.readiness.refusal`: as root without the agent's user, no Claude
login, the gate's program missing ...; the same line `factory doctor` prints). A
database that does not answer is the next line (`core.db.database`), before migrations.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import logging
import shutil
import signal
import socket
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


def bind_api_socket(settings: Settings) -> socket.socket:
    """The API's listening socket, bound before the database or anything else starts, so a
    port already taken is one line at once rather than a traceback after start-up."""
    where = f"{settings.host}:{settings.port}"
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            settings.host.strip("[]") or None, settings.port, type=socket.SOCK_STREAM,
            flags=socket.AI_PASSIVE,
        )[0]  # fmt: skip
    except socket.gaierror as exc:
        raise ConfigError(
            f"HOST={settings.host}: not an address to listen on ({exc.strerror})"
        ) from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(
                f"PORT={settings.port}: {where} is already in use (another `factory up`?);"
                " stop it, or set PORT to a free port"
            ) from None
        raise ConfigError(f"cannot listen on {where}: {exc.strerror}") from None
    return sock


def refuse_unready_workers(settings: Settings) -> None:
    """Workers that would fail every item for a reason of this machine are not started:
    the factory does not start, with the line `factory doctor` shows for it."""
    from ai_factory.worker.readiness import refusal

    if settings.factory_spawner == "bwrap" and shutil.which("bwrap") is None:
        from ai_factory.orchestrator.spawners.bwrap import BWRAP_MISSING

        raise ConfigError(BWRAP_MISSING)  # before what the workers inside it would need
    reason = refusal(settings)
    if reason is not None:
        raise ConfigError(f"workers cannot run here: {reason} (`factory doctor` checks it all;"
                          " MAX_WORKERS=0 runs the factory without workers)")  # fmt: skip


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
        self._signals = 0

    def request_stop(self) -> None:
        """First signal: stop claiming, let workers finish for SHUTDOWN_GRACE_SECONDS, hand
        the rest back, stop. Second: skip the wait. Third: stop the server now."""
        if self._server is None or self._services is None:
            return
        self._signals += 1
        if self._signals == 1:
            log.info("orchestrator.stopping")
            self._stopping = asyncio.get_running_loop().create_task(self._stop_gracefully())
        elif self._signals == 2 and not self._server.should_exit:
            log.info("orchestrator.hurrying")
            self._services.runtime.hurry()
        else:  # even when handing workers back hangs
            log.warning("orchestrator.exiting_now")
            if self._stopping is not None:
                self._stopping.cancel()  # the workers are left to the next start
            self._server.should_exit = True
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
        listener = bind_api_socket(self.settings)
        async with AsyncExitStack() as stack:
            stack.callback(listener.close)
            await asyncio.to_thread(refuse_unready_workers, self.settings)
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
                await server.serve(sockets=[listener])
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                log.info("orchestrator.stopped")
