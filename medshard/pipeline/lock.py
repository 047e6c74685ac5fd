"""One build at a time per output folder: `OUT/.medshard/build.lock` names its holder.

The lock file is created exclusively (O_EXCL) and holds `{"host", "pid"}`. A second
build finds it and stops with one line naming the holder. A lock left by a build that
died (same host, process gone) is taken over; a lock from another host is never
guessed stale (its process cannot be checked from here): the message says to delete
it once that build is known to be gone.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from types import TracebackType

from medshard.errors import UserError

LOCK_NAME = ".medshard/build.lock"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


class BuildLock:
    """Context manager holding `out`'s build lock; UserError when another build holds it."""

    def __init__(self, out: Path) -> None:
        self.path = Path(out) / LOCK_NAME
        self.held = False

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        me = {"host": socket.gethostname(), "pid": os.getpid()}
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = self._holder()
                if holder is None or (holder.get("host") == me["host"]
                                      and not _alive(int(holder.get("pid", -1)))):
                    self.path.unlink(missing_ok=True)  # a dead build's lock (or a torn one)
                    continue
                raise UserError(
                    f"{self.path.parent.parent} is being built by process {holder.get('pid')} "
                    f"on {holder.get('host')}; wait for it to finish, or delete {self.path} "
                    "if that build is gone"
                ) from None
            with os.fdopen(fd, "w") as f:
                json.dump(me, f)
            self.held = True
            return
        raise UserError(f"cannot take the build lock {self.path}; delete it and run again")

    def _holder(self) -> dict | None:
        try:
            holder = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None
        return holder if isinstance(holder, dict) else None

    def release(self) -> None:
        if self.held:
            self.path.unlink(missing_ok=True)
            self.held = False

    def __enter__(self) -> BuildLock:
        self.acquire()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()


class RemoteBuildLock:
    """The build lock of an output on object storage: `.medshard/build.lock` as an object.

    Object stores have no exclusive create that every fsspec backend offers, so this lock
    checks, then writes: it stops a second build started after the first one took the
    lock (the usual mistake), not two started in the same instant. Two such builds of one
    config write the same bytes. A lock left by a dead build of this host is taken over;
    one from another host is deleted by hand (the message says so).
    """

    def __init__(self, store) -> None:
        self.store = store
        self.held = False

    def acquire(self) -> None:
        me = {"host": socket.gethostname(), "pid": os.getpid()}
        if self.store.exists(LOCK_NAME):
            try:
                holder = json.loads(self.store.read_bytes(LOCK_NAME))
            except (OSError, ValueError):
                holder = {}
            dead = (holder.get("host") == me["host"]
                    and not _alive(int(holder.get("pid", -1))))
            if not dead:  # a build on another host is never guessed gone
                raise UserError(
                    f"{self.store} is being built by process {holder.get('pid')} on "
                    f"{holder.get('host')}; wait for it to finish, or delete "
                    f"{self.store.url(LOCK_NAME)} if that build is gone")
        self.store.write_bytes(LOCK_NAME, json.dumps(me).encode())
        self.held = True

    def release(self) -> None:
        if self.held:
            self.store.remove(LOCK_NAME)
            self.held = False

    def __enter__(self) -> RemoteBuildLock:
        self.acquire()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()
