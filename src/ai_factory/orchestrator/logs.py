"""Per-item worker logs: one file under FACTORY_HOME/logs, appended by every attempt.

A spawned worker writes its stdout and stderr straight into the file (an O_APPEND
descriptor it inherits), so the log keeps growing while the orchestrator restarts.
The size cap works like logrotate's copytruncate: past `max_bytes` the file is copied
to ``<id>.log.1`` and truncated; appenders carry on at the new end. Readers follow by
byte offset; an offset past the end means the file was rotated, and reading starts
again from 0 with ``reset`` set.
"""

from __future__ import annotations

import asyncio
import codecs
import logging
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

from pydantic import Field

from ai_factory.core.logging import scrub
from ai_factory.core.models import WireModel

log = logging.getLogger(__name__)

READ_LIMIT_BYTES = 256 * 1024
# The largest byte offset a reader may ask for (far past any log; fits a signed 64-bit int).
MAX_LOG_OFFSET = 2**62


class LogChunk(WireModel):
    """GET /api/work/{id}/logs: a slice of an item's worker log."""

    offset: int = Field(description="Where this text starts (bytes).")
    next_offset: int = Field(description="Ask for this offset next.")
    size: int = Field(description="Current size of the log file (bytes).")
    text: str = ""
    reset: bool = Field(default=False, description="The file was rotated; reading restarted at 0.")


class WorkerLogs:
    def __init__(self, *, root: Path, max_bytes: int) -> None:
        self.root = root
        self.max_bytes = max_bytes

    def path(self, item_id: UUID) -> Path:
        return self.root / f"{item_id}.log"

    def open_append(self, item_id: UUID, header: str) -> int:
        """An O_APPEND descriptor for a new worker's output, after a header line."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path(item_id), os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        os.write(fd, f"--- {stamp} {header} ---\n".encode())
        return fd

    async def read_async(
        self,
        item_id: UUID,
        *,
        offset: int = 0,
        limit: int = READ_LIMIT_BYTES,
        from_end: bool = False,
    ) -> LogChunk:
        """`read` in a thread: request handlers must not block the event loop on disk."""
        return await asyncio.to_thread(
            self.read, item_id, offset=offset, limit=limit, from_end=from_end
        )

    def read(
        self,
        item_id: UUID,
        *,
        offset: int = 0,
        limit: int = READ_LIMIT_BYTES,
        from_end: bool = False,
    ) -> LogChunk:
        """Up to `limit` bytes from `offset`; with `from_end`, the log's last `limit` bytes
        (the chunk's `offset` says where they start)."""
        path = self.path(item_id)
        try:
            with path.open("rb") as handle:
                size = os.fstat(handle.fileno()).st_size
                if from_end:
                    offset = max(0, size - limit)
                reset = offset > size
                start = 0 if reset else offset
                handle.seek(start)
                data = handle.read(max(0, min(limit, size - start)))
        except FileNotFoundError:
            return LogChunk(offset=0, next_offset=0, size=0, reset=offset > 0)
        # Never split a UTF-8 sequence between two chunks.
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        # Workers get secrets the orchestrator also knows (GITHUB_TOKEN); never serve them.
        text = scrub(decoder.decode(data, final=False))
        pending = len(decoder.getstate()[0])
        return LogChunk(
            offset=start, next_offset=start + len(data) - pending, size=size, text=text, reset=reset
        )

    def enforce_cap(self, item_id: UUID) -> bool:
        """Rotate the item's log if it grew past the cap; True when it did."""
        path = self.path(item_id)
        try:
            if path.stat().st_size <= self.max_bytes:
                return False
            shutil.copyfile(path, path.with_name(path.name + ".1"))
            with path.open("r+b") as handle:
                handle.truncate(0)
                handle.write(f"[log rotated: earlier output is in {path.name}.1]\n".encode())
        except FileNotFoundError:
            return False
        log.info("logs.rotated item=%s", item_id)
        return True
