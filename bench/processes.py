"""The two measured servers as processes, and what the harness reads about them and the machine.

Responsible for starting and stopping the control plane subprocess and the floor process, and for the
readings taken from outside them (reference/performance.md §7.5): CPU from /proc/<pid>/stat (utime+stime,
all threads) and RSS from /proc/<pid>/status, so each server's numbers are its own and the harness needs no
hook inside the control plane. The control plane runs as a real `controlplane run` subprocess (not
in-process, as bench/envoy_convergence.py does) precisely so that these readings exclude the harness.

Must not: decide what to measure or when; bench/driver.py orchestrates, bench/measure.py aggregates.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import pickle
import platform
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Final

import aiohttp
import grpc

from bench.floor import floor_main
from bench.workload import ProxyConfig

CLK_TCK: Final = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all threads), from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def load_average() -> str:
    """Recorded with every run: the machine is shared, so absolute times are only comparable at equal load."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def machine() -> dict[str, Any]:
    """Versions that numbers depend on, stored in the JSON so results stay attributable."""
    try:
        from tests.e2e.support.envoy import find_envoy
        envoy = subprocess.run([find_envoy(), "--version"], capture_output=True, text=True, timeout=10, check=False).stdout
        envoy_version = envoy.split("version:")[-1].strip().split("/")[1] if "version:" in envoy else envoy.strip()
    except Exception:  # noqa: BLE001 - informational only
        envoy_version = "unknown"
    import google.protobuf
    return {"cores": os.cpu_count(), "python": platform.python_version(), "grpcio": grpc.__version__,
            "protobuf": google.protobuf.__version__, "envoy": envoy_version, "kernel": platform.release()}


class ControlPlaneProcess:
    """`controlplane run --store memory` as a subprocess, optionally pinned with taskset."""

    def __init__(self, debounce_s: float, max_wait_s: float, cpus: str | None, log_path: Path,
                 allocator: str = "pymalloc") -> None:
        self.api_port, self.xds_port = free_port(), free_port()
        code = "from controlplane.cli.main import main; main()"
        command = [sys.executable, "-c", code, "run", "--store", "memory", "--api-port", str(self.api_port),
                   "--xds-address", "127.0.0.1", "--xds-port", str(self.xds_port), "--log-level", "warning",
                   "--debounce", str(debounce_s), "--max-wait", str(max_wait_s)]
        if cpus is not None:
            command = ["taskset", "-c", cpus, *command]
        # PYTHONMALLOC=malloc is the documented setting for returning memory after streams close
        # (README "Memory"); the default allocator is what `controlplane run` gets without it.
        env = {**os.environ, "PYTHONHASHSEED": "0", "PYTHONMALLOC": allocator}
        self.log = log_path.open("w")
        self.proc = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT, env=env)
        self.base = f"http://127.0.0.1:{self.api_port}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    async def wait_ready(self, session: aiohttp.ClientSession, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"control plane exited with {self.proc.returncode}; see {self.log.name}")
            try:
                async with session.get(self.base + "/ready") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
        raise TimeoutError("control plane not ready")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


class FloorProcess:
    """The floor server (bench/floor.py) in a spawned process, driven by commands over a pipe.

    The pre-built states go through a pickle file rather than the pipe: they are built before the clock
    starts and can be large, and the pipe stays free for the timed `advance` commands.
    """

    def __init__(self, states: list[dict[str, ProxyConfig]], delta: bool, cpus: set[int] | None) -> None:
        self.plan = tempfile.NamedTemporaryFile(prefix="bench-floor-", suffix=".pickle", delete=False)  # noqa: SIM115 - unlinked in stop()
        pickle.dump(states, self.plan)
        self.plan.close()
        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        self.proc = context.Process(target=floor_main, args=(child, self.plan.name, delta, cpus), daemon=True)
        self.proc.start()
        self.port = 0

    @property
    def pid(self) -> int:
        assert self.proc.pid is not None
        return self.proc.pid

    async def wait_ready(self) -> None:
        loop = asyncio.get_running_loop()
        kind, self.port = await loop.run_in_executor(None, self.conn.recv)
        assert kind == "ready"

    async def call(self, *command: Any) -> Any:
        self.conn.send(command)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, self.conn.recv)

    def send(self, *command: Any) -> None:
        self.conn.send(command)

    async def stop(self) -> None:
        try:
            await asyncio.wait_for(self.call("stop"), 5)
        except (TimeoutError, EOFError, BrokenPipeError):
            pass
        self.proc.join(3)
        if self.proc.is_alive():
            self.proc.kill()
        os.unlink(self.plan.name)
