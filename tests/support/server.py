"""A real orchestrator HTTP server in a background thread, for tests.

It binds its own socket on 127.0.0.1 (port chosen by the OS), runs the same
`create_app` as `factory up` against a test database, and stops cleanly.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Awaitable, Callable

import uvicorn

from ai_factory.core.db.database import Database
from ai_factory.core.settings import Settings
from ai_factory.orchestrator.api.app import create_app
from ai_factory.orchestrator.services import Services

Component = Callable[[Services], Awaitable[None]]


class ServerThread:
    def __init__(self, settings: Settings, *, components: list[Component] | None = None) -> None:
        self.settings = settings
        self.components = components or []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.services: Services | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._server: uvicorn.Server | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="factory-test-server", daemon=True)

    def start(self) -> ServerThread:
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("test server did not start in 30 s")
        if self._error:
            raise RuntimeError("test server failed to start") from self._error
        return self

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # noqa: BLE001 - surfaced to the test thread by start()
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        self.loop = asyncio.get_running_loop()
        assert self.settings.database_url
        db = await Database.open(self.settings.database_url, max_size=20)
        try:
            self.services = Services.build(self.settings, db)
            app = create_app(self.services)
            config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="on")
            self._server = uvicorn.Server(config)
            self._server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
            tasks = [asyncio.create_task(c(self.services)) for c in self.components]
            serving = asyncio.create_task(self._server.serve(sockets=[self.sock]))
            while not self._server.started and not serving.done():
                await asyncio.sleep(0.01)
            self._ready.set()
            await serving
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            if self.services is not None:
                await self.services.close()
            await db.close()

    def call(self, coro: Awaitable) -> object:
        """Run a coroutine on the server's loop (e.g. a direct store call) and wait."""
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)  # type: ignore[arg-type]

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        self._thread.join(15)
        self.sock.close()


def reserved_port_server(settings: Settings, port: int) -> ServerThread:
    """A test orchestrator on a given port (to bring one back where the old one was)."""
    server = ServerThread(settings)
    server.sock.close()
    server.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.sock.bind(("127.0.0.1", port))
    server.port, server.url = port, f"http://127.0.0.1:{port}"
    return server
