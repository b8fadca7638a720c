"""Real processes for the CLI tests: a `controlplane run` server and one-shot `controlplane` commands.

Nothing here imports the CLI: the console script is run exactly as a user would, so entry-point wiring,
environment handling and exit codes are part of what is tested. Waits poll a condition until a deadline.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

READY_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 10.0
CLI_TIMEOUT_S = 30.0


def controlplane_script() -> str:
    """The console script next to the running interpreter (the venv's bin/), else the one on PATH."""
    beside = Path(sys.executable).parent / "controlplane"
    found = str(beside) if beside.exists() else shutil.which("controlplane") or str(beside)
    assert Path(found).exists(), f"console script not found: {found}"
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def http_json(method: str, url: str, body: object = None, timeout: float = 5.0, *,
              context: ssl.SSLContext | None = None, token: str | None = None) -> tuple[int, Any]:
    """One API call with the stdlib (independent of the CLI's client); returns (status, decoded body)."""
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as resp:
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        return exc.code, json.loads(raw) if raw else None


@dataclass
class Server:
    """A `controlplane run` child process and the base URL of its HTTP API."""

    process: subprocess.Popen[bytes]
    url: str
    log_path: Path
    context: ssl.SSLContext | None = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int:
        """SIGTERM, wait for the exit (bounded), and return the exit code; the process is reaped."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"server did not stop within {STOP_TIMEOUT_S}s of SIGTERM:\n{self.log()}") from None

    def get(self, path: str) -> tuple[int, Any]:
        return http_json("GET", self.url + path, context=self.context)


def start_server(store_url: str, log_path: Path, *extra: str, ca_file: Path | None = None,
                 cwd: Path | None = None, port: int | None = None) -> Server:
    """Start `controlplane run` (plus `extra` options) on a free API port (or `port`) and wait (polling GET /)
    until it answers; with `ca_file` the API is HTTPS and trusted through that CA."""
    port = port or free_port()
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [controlplane_script(), "run", "--store", store_url, "--api-port", str(port), "--xds-port", "0", *extra],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=cwd,
        )
    context = ssl.create_default_context(cafile=str(ca_file)) if ca_file else None
    server = Server(process, f"{'https' if ca_file else 'http'}://127.0.0.1:{port}", log_path, context)
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        if process.poll() is not None:
            raise AssertionError(f"server exited with {process.returncode} before it was ready:\n{server.log()}")
        try:
            if server.get("/")[0] == 200:
                return server
        except OSError:
            pass  # not listening yet
        if time.monotonic() > deadline:
            server.stop()
            raise AssertionError(f"server not ready within {READY_TIMEOUT_S}s:\n{server.log()}")
        time.sleep(0.05)


def assert_gone(server: Server) -> None:
    """The process has exited and been reaped: its pid no longer names our child."""
    assert server.process.poll() is not None
    try:
        os.kill(server.process.pid, 0)
    except ProcessLookupError:
        return
    # The pid may have been reused by an unrelated process; it must at least not be our server any more.
    cmdline = Path(f"/proc/{server.process.pid}/cmdline").read_bytes()
    assert b"--api-port" not in cmdline, "the server process is still running"


# The CLI configuration of test commands: in a directory that does not exist, so no test reads the developer's
# own ~/.config/controlplane and a command that would write it fails instead (tests of `config` pass their own).
NO_CLI_CONFIG = str(Path(tempfile.gettempdir()) / f"controlplane-tests-no-config-{os.getpid()}" / "config.yaml")


def run_cli(*args: str, url: str | None, stdin: str | None = None, env: dict[str, str] | None = None,
            cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real console script with CONTROLPLANE_API_URL pointing at `url` (None: unset) (in `cwd` if
    given)."""
    environ = {**os.environ, "CONTROLPLANE_CONFIG": NO_CLI_CONFIG, **(env or {})}
    environ.pop("CONTROLPLANE_API_URL", None)
    if url is not None:
        environ["CONTROLPLANE_API_URL"] = url
    return subprocess.run(
        [controlplane_script(), *args], input=stdin if stdin is not None else "", capture_output=True,
        text=True, env=environ, timeout=CLI_TIMEOUT_S, check=False, cwd=cwd,
    )
