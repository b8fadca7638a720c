"""`controlplane demo` as a new user runs it: one command, real Envoys, traces printed, nothing left behind.

The demo is the console script in a child process with free ports, so it cannot clash with a running control
plane or another test. "Nothing left behind" is checked with the pids the demo prints for its Envoys: each
must be gone (or a zombie already dead) once the demo has exited.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

SCRIPT = str(Path(sys.executable).parent / "controlplane")
FULL_TRACE = re.compile(r"^trace [0-9a-f]+  3 services \(backend, db, frontend\), 5 spans", re.MULTILINE)
ENVOY_PIDS = re.compile(r"(\w+-1) \(pid (\d+)\)")
DURATION_S = 20


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (ProcessLookupError, FileNotFoundError):
        return True
    return state == "Z"


def _envoy_pids(stdout: str) -> dict[str, int]:
    return {name: int(pid) for name, pid in ENVOY_PIDS.findall(stdout)}


async def _start(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        SCRIPT, "demo", *args, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def test_demo_with_duration_prints_full_traces_and_cleans_up() -> None:
    process = await _start("--duration", str(DURATION_S))
    try:
        out, err = await asyncio.wait_for(process.communicate(), DURATION_S + 60)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    stdout, stderr = out.decode(), err.decode()
    assert process.returncode == 0, stdout + stderr
    assert FULL_TRACE.search(stdout), stdout
    assert "└─ db  server" in stdout
    assert re.search(r"^demo stopped: \d+ of \d+ traces spanned backend, db, frontend; first after", stdout,
                     re.MULTILINE), stdout
    for command in ("controlplane get meshes", "controlplane inspect dataplane frontend-1", "controlplane apply"):
        assert command in stdout
    api = re.search(r"Control plane API: (http://127\.0\.0\.1:\d+)", stdout)
    assert api is not None and api.group(1) != "http://127.0.0.1:5681", stdout  # a free port, not the default
    assert f"Web GUI: {api.group(1)}/gui/" in stdout, stdout
    pids = _envoy_pids(stdout)
    assert sorted(pids) == ["backend-1", "db-1", "frontend-1"], stdout
    assert all(_gone(pid) for pid in pids.values()), pids


async def test_ctrl_c_stops_everything() -> None:
    process = await _start()
    assert process.stdout is not None
    seen: list[str] = []
    try:
        async with asyncio.timeout(60):
            while not FULL_TRACE.search("".join(seen)):
                line = (await process.stdout.readline()).decode()
                assert line, "demo exited before printing a full trace:\n" + "".join(seen)
                seen.append(line)
        process.send_signal(signal.SIGINT)
        rest, err = await asyncio.wait_for(process.communicate(), 30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    stdout = "".join(seen) + rest.decode()
    assert process.returncode == 0, stdout + err.decode()
    assert "demo stopped:" in stdout
    pids = _envoy_pids(stdout)
    assert len(pids) == 3 and all(_gone(pid) for pid in pids.values()), pids
