"""Files in a tree the agent controls, read and written without following what it planted.

Owns: how the worker reads SPEC.md, the stuck note and new learnings from the worktree,
writes SPEC.md, `.ai/learnings.md` and the excludes file, and hands folders to the agent's
user. The worker may be root while the agent is not (`agent_user`), and the agent may have
put a symlink where one of those files or a folder on the way to it was: `SPEC.md ->
/etc/shadow` would put that file into the next prompt, a write through it would clobber a
file of root's. It may also have left a FIFO (a read would hang) or a huge file. So:

- below `root` every step is opened relative to the folder before it with O_NOFOLLOW, so
  a symlink anywhere on the path is refused, never followed (and a folder swapped for a
  symlink mid-way cannot redirect what comes next);
- a read takes a regular file only, opened without blocking and checked with fstat, and
  at most `limit` bytes of it;
- a write creates a new file beside the target (O_EXCL) and renames it over the name, so
  whatever stood there (symlink, hard link, FIFO) is replaced, never written through. A
  symlink or file where a folder belongs is removed and the folder made: these paths are
  the factory's own;
- `owner` (uid, gid) gives new files and folders to the agent's user.

`root` itself is trusted: it is a folder whose parent only the worker may change
(`FACTORY_HOME/worktrees/<id>`, or a worktree's admin folder in the mirror).
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

MAX_READ_BYTES = 16 * 1024 * 1024
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_NOT_FOLLOWED = (errno.ELOOP, errno.ENOTDIR)

Owner = tuple[int, int]  # uid, gid


class UnsafePathError(OSError):
    """A path the worker will not use: a symlink or non-folder on the way, or `..`."""


def _unreachable(exc: OSError) -> bool:
    """Missing, or reached only through a symlink or a non-folder: not there for the worker."""
    return isinstance(exc, (FileNotFoundError, UnsafePathError)) or exc.errno in _NOT_FOLLOWED


def _parts(rel: str) -> tuple[list[str], str]:
    path = PurePosixPath(rel)
    parts = list(path.parts)
    if not parts or path.is_absolute() or any(p in ("..", ".") for p in parts) or "\0" in rel:
        raise UnsafePathError(errno.EINVAL, f"{rel!r} is not a path inside the tree")
    return parts[:-1], parts[-1]


@contextlib.contextmanager
def _folder(
    root: Path, parts: list[str], *, create: bool = False, owner: Owner | None = None
) -> Iterator[int]:
    """A descriptor of root/parts, each step opened without following symlinks."""
    fd = os.open(root, _DIR_FLAGS)
    try:
        for part in parts:
            parent, fd = fd, -1  # _step closes the parent, whatever happens
            fd = _step(parent, part, create=create, owner=owner)
        yield fd
    finally:
        if fd >= 0:
            os.close(fd)


def _step(parent: int, name: str, *, create: bool, owner: Owner | None) -> int:
    """Open folder `name` in `parent` (closing `parent`); with `create`, make it if needed."""
    try:
        try:
            return os.open(name, _DIR_FLAGS, dir_fd=parent)
        except FileNotFoundError:
            if not create:
                raise
        except OSError as exc:
            if exc.errno not in _NOT_FOLLOWED:
                raise
            if not create:
                raise UnsafePathError(exc.errno, f"{name!r} is not a folder") from None
            os.unlink(name, dir_fd=parent)  # a symlink or a file where our folder belongs
        os.mkdir(name, 0o755, dir_fd=parent)
        fd = os.open(name, _DIR_FLAGS, dir_fd=parent)
        if owner is not None:
            os.fchown(fd, *owner)
        return fd
    finally:
        os.close(parent)


def read_text(root: Path, rel: str, *, limit: int = MAX_READ_BYTES) -> str | None:
    """The text of `root/rel` (at most `limit` bytes of it); None when it is missing or is
    not a regular file reached through folders alone."""
    folders, name = _parts(rel)
    try:
        with _folder(root, folders) as parent:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY
                         | os.O_CLOEXEC, dir_fd=parent)  # fmt: skip
    except OSError as exc:
        if _unreachable(exc):
            return None
        raise
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return handle.read(limit).decode(errors="replace")


def is_file(root: Path, rel: str) -> bool:
    """Whether `root/rel` is a regular file reached through folders alone."""
    folders, name = _parts(rel)
    try:
        with _folder(root, folders) as parent:
            return stat.S_ISREG(os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode)
    except OSError as exc:
        if _unreachable(exc):
            return False
        raise


def write_text(
    root: Path, rel: str, text: str, *, owner: Owner | None = None, mode: int = 0o644
) -> None:
    """Make `root/rel` a new regular file holding `text` (folders made as needed)."""
    folders, name = _parts(rel)
    with _folder(root, folders, create=True, owner=owner) as parent:
        tmp = f".{name}.{uuid.uuid4().hex}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     mode, dir_fd=parent)  # fmt: skip
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(text.encode())
                if owner is not None:
                    os.fchown(fd, *owner)
                os.fchmod(fd, mode)
            os.replace(tmp, name, src_dir_fd=parent, dst_dir_fd=parent)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=parent)
            raise


def ensure_folder(root: Path, rel: str, *, owner: Owner | None = None) -> None:
    """Make `root/rel` a folder (with its parents), `owner`'s when given."""
    folders, name = _parts(rel)
    with _folder(root, [*folders, name], create=True, owner=owner) as fd:
        if owner is not None:
            os.fchown(fd, *owner)


def rename(root: Path, rel: str, new_name: str) -> bool:
    """Rename `root/rel` to `new_name` in the same folder; False when it does not exist."""
    folders, name = _parts(rel)
    if "/" in new_name or new_name in ("", ".", ".."):
        raise UnsafePathError(errno.EINVAL, f"{new_name!r} is not a file name")
    try:
        with _folder(root, folders) as parent:
            os.replace(name, new_name, src_dir_fd=parent, dst_dir_fd=parent)
    except (FileNotFoundError, UnsafePathError):
        return False
    return True


def share_folders(root: Path, rel: str, *, gid: int, mode: int) -> None:
    """Give `root/rel` and every folder below it to group `gid` with `mode` (the owner stays);
    symlinks are left alone. Walks by descriptors, so a folder swapped for a symlink on the
    way is skipped, not followed."""
    folders, name = _parts(rel)
    with (
        contextlib.suppress(FileNotFoundError, UnsafePathError),
        _folder(root, [*folders, name]) as fd,
    ):
        _share(fd, gid=gid, mode=mode)


def _share(fd: int, *, gid: int, mode: int) -> None:
    info = os.fstat(fd)
    if info.st_gid != gid:
        os.fchown(fd, -1, gid)
    if stat.S_IMODE(info.st_mode) != mode:
        os.fchmod(fd, mode)
    for name in _subfolders(fd):
        try:
            child = os.open(name, _DIR_FLAGS, dir_fd=fd)
        except OSError:
            continue  # gone, or swapped for a symlink since the listing
        try:
            _share(child, gid=gid, mode=mode)
        finally:
            os.close(child)


def _subfolders(fd: int) -> list[str]:
    with os.scandir(fd) as entries:
        return [entry.name for entry in entries if entry.is_dir(follow_symlinks=False)]


def chown_tree(path: Path, owner: Owner) -> None:
    """Give `path` and everything below it to `owner`, symlinks included (never followed)."""
    fd = os.open(path, _DIR_FLAGS)
    try:
        _chown(fd, owner)
    finally:
        os.close(fd)


def _chown(fd: int, owner: Owner) -> None:
    os.fchown(fd, *owner)
    with os.scandir(fd) as entries:
        listing = [(entry.name, entry.is_dir(follow_symlinks=False)) for entry in entries]
    for name, is_dir in listing:
        if not is_dir:
            os.chown(name, *owner, dir_fd=fd, follow_symlinks=False)
            continue
        try:
            child = os.open(name, _DIR_FLAGS, dir_fd=fd)
        except OSError:
            continue
        try:
            _chown(child, owner)
        finally:
            os.close(child)
