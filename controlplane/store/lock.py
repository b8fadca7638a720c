"""One owner per SQLite file: an exclusive `flock` on `PATH.lock`, held for as long as the store is open.

SQLite mode is single-replica (replicas share PostgreSQL, whose LISTEN/NOTIFY carries changes between
them): a second process on the same file would write rows that the first one's reconciler never hears
about, so its Envoys would silently go stale. Everything that opens a `SqliteStore` (`controlplane run`,
`import --store`, `export --store`) takes this lock first and is refused while another process holds it.

Why a lock file with `flock` and not an SQLite-level lock (`PRAGMA locking_mode = EXCLUSIVE`):
- the kernel drops a `flock` when its holder exits, even on SIGKILL, so there is never a stale lock to
  clean up; the lock file itself is left in place on purpose (unlinking it would let a second process lock
  a new inode while a third still holds the old one), and its presence means nothing;
- the holder writes its pid into the file, so a refusal can name who holds the database;
- SQLite's exclusive mode is only taken on the first read or write, after `busy_timeout`, and reports
  "database is locked" with no holder, which is what an operator can't act on.
Rejected too: `fcntl`/`lockf` record locks, which a process loses as soon as it closes *any* descriptor of
the file (sqlite3 or a backup tool opening the lock file would silently release it).
Limits: `flock` is advisory (a plain `sqlite3` shell is not stopped) and, on network file systems, only as
good as the server's lock support; the README says to keep the SQLite file on a local disk.

Must not: touch the database itself; that is `sqlite_schema.py`'s job.
"""

from __future__ import annotations

import errno
import fcntl
import os
from typing import Final

from controlplane.errors import StoreLocked, StoreUnavailable

LOCK_SUFFIX: Final = ".lock"


def lock_path(database: str) -> str:
    return database + LOCK_SUFFIX


class StoreLock:
    """An exclusive lock on one database file; `release()` (or process exit) gives it up."""

    __slots__ = ("_fd", "path")

    def __init__(self, path: str, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, database: str) -> StoreLock:
        """Lock `database` or raise StoreLocked (held by another process) / StoreUnavailable (no lock file)."""
        path = lock_path(database)
        try:
            # O_CLOEXEC: a child process (Envoy, a shell) must never inherit, and so share, the lock.
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise StoreUnavailable(f"cannot create the lock file {path}: {exc.strerror or exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = _read_pid(fd)
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise StoreLocked(database, holder) from None
            raise StoreUnavailable(f"cannot lock {path}: {exc.strerror or exc}") from None
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError:
            pass  # the pid is only informative; the lock is what protects the database
        return cls(path, fd)

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)  # closing the only descriptor of this open file drops the flock


def _read_pid(fd: int) -> int | None:
    """The holder's pid, or None if it has not written it yet (it locks first, then writes)."""
    try:
        text = os.pread(fd, 32, 0).decode("ascii", errors="replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
