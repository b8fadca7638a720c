"""`controlplane run` as a child process, for tests that kill, stop and restart it, or measure it.

Responsible for: starting the console script on fixed ports (so Envoys find it again after a restart),
waiting until its API answers, SIGKILL / SIGTERM, and reading its resident memory and open file descriptors
from /proc. Must not: assert anything about the control plane's behaviour.
"""

from __future__ import annotations

import asyncio
import os
import re
import resource
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from .waiting import eventually, free_port

READY_TIMEOUT_S = 20.0
HOST = "127.0.0.1"


def controlplane_script() -> str:
    return str(Path(sys.executable).parent / "controlplane")


@dataclass
class ControlPlaneProcess:
    """One `controlplane run`; `start()` may be called again after it exited, on the same ports."""

    store_url: str
    log_path: Path
    api_port: int = field(default_factory=free_port)
    xds_port: int = field(default_factory=free_port)
    extra: tuple[str, ...] = ()
    open_files: tuple[int, int] | None = None
    """(soft, hard) RLIMIT_NOFILE of the child, set by `sh`'s ulimit just before it execs the control plane."""
    process: subprocess.Popen[bytes] | None = None

    @property
    def api_url(self) -> str:
        return f"http://{HOST}:{self.api_port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    async def start(self) -> None:
        args = [controlplane_script(), "run", "--store", self.store_url, "--api-address", HOST,
                "--api-port", str(self.api_port), "--xds-address", HOST, "--xds-port", str(self.xds_port),
                "--debounce", "0.02", "--max-wait", "0.2", *self.extra]  # fmt: skip
        if self.open_files is not None:
            soft, hard = self.open_files
            args = ["sh", "-c", f'ulimit -Sn {soft} && ulimit -Hn {hard} && exec "$@"', "sh", *args]
        with self.log_path.open("ab") as log:
            # Popen only forks and execs: nothing here waits on the child.
            self.process = subprocess.Popen(  # noqa: ASYNC220
                args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        await eventually(self._ready, timeout=READY_TIMEOUT_S, message=f"control plane not ready:\n{self.log()}")

    async def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise RuntimeError(f"control plane exited with {self.process.returncode}:\n{self.log()}")
        async with aiohttp.ClientSession() as http, http.get(f"{self.api_url}/ready") as response:
            return response.status == 200

    def kill(self) -> None:
        """SIGKILL: no clean-up at all, as when the machine or the OOM killer takes the process."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=10)

    async def terminate(self, timeout: float = 15.0) -> int:
        """SIGTERM and wait for the exit; returns the exit code."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return await asyncio.to_thread(self.process.wait, timeout)

    def stop(self) -> None:
        """Teardown: whatever state it is in, it is gone afterwards."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def rss_kib(self) -> int:
        match = re.search(r"^VmRSS:\s+(\d+) kB", Path(f"/proc/{self.pid}/status").read_text(), re.MULTILINE)
        assert match, "no VmRSS"
        return int(match.group(1))

    def open_fds(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def peak_rss_kib(self) -> int:
        """VmHWM: the most resident memory the process has had."""
        match = re.search(r"^VmHWM:\s+(\d+) kB", Path(f"/proc/{self.pid}/status").read_text(), re.MULTILINE)
        assert match, "no VmHWM"
        return int(match.group(1))

    def open_files_limit(self) -> tuple[int, int]:
        """The child's (soft, hard) RLIMIT_NOFILE."""
        soft, hard = resource.prlimit(self.pid, resource.RLIMIT_NOFILE)
        return soft, hard
