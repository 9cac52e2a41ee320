"""Composition root of the orchestrator process (`factory up`, `factory orchestrator`).

Reads settings once, opens (or starts) the database, applies migrations, builds
the services and serves the API. Background components (scheduler, intake, ...)
run beside the server in the same event loop and stop when it stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AsyncExitStack

import uvicorn

from ai_factory.core.db.connect import open_database
from ai_factory.core.settings import Settings
from ai_factory.orchestrator.api.app import create_app
from ai_factory.orchestrator.services import Services

log = logging.getLogger(__name__)

# A component gets the services and runs until cancelled.
Component = Callable[[Services], Awaitable[None]]


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the orchestrator decides how to stop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class Orchestrator:
    def __init__(self, settings: Settings, *, components: list[Component] | None = None) -> None:
        self.settings = settings
        self.components = components or []
        self._server: _Server | None = None

    def request_stop(self) -> None:
        """First signal: stop gracefully. Second: stop now."""
        if self._server is None:
            return
        if self._server.should_exit:
            self._server.force_exit = True
        self._server.should_exit = True
        log.info("orchestrator.stopping")

    async def run(self) -> None:
        async with AsyncExitStack() as stack:
            db = await stack.enter_async_context(open_database(self.settings))
            services = Services.build(self.settings, db)
            stack.push_async_callback(services.close)
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
            tasks = [asyncio.create_task(c(services), name=getattr(c, "__name__", "component")) for c in self.components]
            log.info(
                "orchestrator.started url=http://%s:%s database=%s",
                self.settings.host,
                self.settings.port,
                "embedded" if self.settings.database_url is None else "external",
            )
            try:
                await server.serve()
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                log.info("orchestrator.stopped")
