"""A throwaway PostgreSQL server for tests: `initdb` + `pg_ctl` in a temporary directory on a free port.

Responsible for finding the server binaries (PATH, then /usr/lib/postgresql/*/bin), creating a cluster
owned by the `postgres` user (PostgreSQL refuses to run as root, so as root every command goes through
`runuser -u postgres --`), starting and stopping it (tests of database outages stop and restart it), and
removing everything at the end. Must not: know about the control plane or pytest (the fixtures in
tests/postgres_fixture.py decide what a missing binary means).

Tuned for tests, not durability: fsync and synchronous_commit are off.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Final

SERVER_USER: Final = "postgres"
START_TIMEOUT_S: Final = 30


class PostgresNotFound(RuntimeError):
    """The PostgreSQL server binaries (initdb, pg_ctl) are not installed."""


def find_bindir() -> Path:
    """Directory holding initdb and pg_ctl: PATH first, then the newest /usr/lib/postgresql/*/bin."""
    found = shutil.which("initdb")
    if found:
        # Debian links /usr/local/bin/initdb to /usr/lib/postgresql/N/bin/initdb: pg_ctl sits next to the target.
        bindir = Path(found).resolve().parent
        if (bindir / "pg_ctl").exists():
            return bindir
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3].split(".")[0])
    )
    if candidates:
        return Path(candidates[-1]).parent
    raise PostgresNotFound(
        "PostgreSQL server binaries not found (initdb/pg_ctl on PATH or in /usr/lib/postgresql/*/bin); "
        "install them with `apt-get install -y postgresql`"
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PostgresServer:
    """One cluster. `url(database)` is the DSN tests hand to the store (trust auth, user `postgres`)."""

    bindir: Path
    root: Path
    port: int

    @property
    def datadir(self) -> Path:
        return self.root / "data"

    @property
    def logfile(self) -> Path:
        return self.root / "server.log"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{SERVER_USER}@127.0.0.1:{self.port}/{database}"

    @classmethod
    def create(cls) -> PostgresServer:
        """initdb a fresh cluster in a new temporary directory (not started yet)."""
        bindir = find_bindir()
        # Directly under the system temp dir: pytest's tmp_path lives in a root-only (0700) directory the
        # postgres user could not enter.
        root = Path(tempfile.mkdtemp(prefix="cp-pg-"))
        server = cls(bindir, root, free_port())
        try:
            if os.geteuid() == 0:
                entry = pwd.getpwnam(SERVER_USER)
                os.chown(root, entry.pw_uid, entry.pw_gid)
            server._run("initdb", "-D", str(server.datadir), "-A", "trust", "-U", SERVER_USER, "-E", "UTF8",
                        "--no-sync")  # fmt: skip
        except BaseException:
            server.remove()
            raise
        return server

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        self._run("pg_ctl", "-D", str(self.datadir), "-l", str(self.logfile), "-o", options,
                  "-t", str(START_TIMEOUT_S), "-w", "start")  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        """Stop the server; `fast` disconnects every client, as a database restart does in production."""
        self._run("pg_ctl", "-D", str(self.datadir), "-m", mode, "-t", str(START_TIMEOUT_S), "-w", "stop")

    def is_running(self) -> bool:
        result = self._run("pg_ctl", "-D", str(self.datadir), "status", check=False)
        return result.returncode == 0

    def remove(self) -> None:
        """Stop the server if it runs and delete its directory."""
        try:
            if self.datadir.joinpath("postmaster.pid").exists():
                self.stop("immediate")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def log_tail(self, lines: int = 50) -> str:
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def _run(self, tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [str(self.bindir / tool), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", SERVER_USER, "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        if check and result.returncode != 0:
            raise RuntimeError(
                f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}\n"
                f"server log:\n{self.log_tail()}"
            )
        return result
