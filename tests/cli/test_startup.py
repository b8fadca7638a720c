"""`controlplane run` start-up failures, as an operator meets them: a real process, one line on stderr that
names the file or port (and the holder's pid), exit 1, no traceback, and nothing written first.

Every attempt runs in an empty working directory (the default store `sqlite:` and the signing key live
there), so "nothing written" is checked as "the directory is still exactly as it was".
"""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path

import pytest
from cli_helpers import (
    CLI_TIMEOUT_S,
    Server,
    controlplane_script,
    free_port,
    http_json,
    run_cli,
    start_server,
)
from sqlite_damage import checkpoint, damage, leaf_pages

from controlplane.api.app import create_app
from controlplane.cli.api_serving import start_api
from controlplane.cli.run import NOT_READY, RunConfig, _start_ads
from controlplane.cli.startup import StartupError
from controlplane.observability import Metrics
from controlplane.store.memory import MemoryStore
from controlplane.xds.cache import SnapshotCache
from controlplane.xds.observer import StatusRegistry
from controlplane.xds.telemetry import MetricsObserver

ONE_OWNER = "an SQLite store has one control plane; give this one its own --store, or share PostgreSQL"


def attempt(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`controlplane run ARGS` in `cwd`; it is expected to exit by itself (a start would hit the timeout)."""
    command = [controlplane_script(), "run", *args]
    if "--api-port" not in args:
        command += ["--api-port", "0"]
    if "--xds-port" not in args:
        command += ["--xds-port", "0"]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=CLI_TIMEOUT_S, check=False,
                          stdin=subprocess.DEVNULL)


def listing(directory: Path) -> list[str]:
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*"))


def assert_one_line(result: subprocess.CompletedProcess[str], expected: str) -> None:
    assert (result.returncode, result.stderr, result.stdout) == (1, f"Error: {expected}\n", ""), result.stderr


@pytest.fixture
def work(tmp_path: Path) -> Path:
    directory = tmp_path / "work"
    directory.mkdir()
    return directory


@pytest.fixture
def squatter() -> Iterator[int]:
    """A port someone else is listening on (127.0.0.1)."""
    with socket.create_server(("127.0.0.1", 0)) as sock:
        yield sock.getsockname()[1]


def test_unsupported_store_url_writes_no_signing_key(work: Path) -> None:
    assert_one_line(attempt(work, "--store", "mysql://x"), "unsupported store URL 'mysql://x'; accepted forms: "
                    "'memory', 'sqlite:PATH' (empty PATH = ./controlplane.db), 'postgres://...'")
    assert listing(work) == []


def test_missing_database_directory_is_not_created(work: Path) -> None:
    target = work / "no" / "such" / "x.db"
    assert_one_line(attempt(work, "--store", f"sqlite:{target}"),
                    f"cannot open sqlite database {target}: directory {target.parent} does not exist")
    assert listing(work) == []


def test_api_port_in_use_is_one_line_and_nothing_written(work: Path, squatter: int) -> None:
    assert_one_line(attempt(work, "--api-port", str(squatter)),
                    f"cannot listen for the HTTP API on 127.0.0.1:{squatter}: Address already in use "
                    "(choose another port with --api-port)")
    assert listing(work) == []


def test_ads_port_in_use_is_one_line_and_nothing_written(work: Path, squatter: int) -> None:
    assert_one_line(attempt(work, "--xds-address", "127.0.0.1", "--xds-port", str(squatter)),
                    f"cannot listen for the ADS server on 127.0.0.1:{squatter}: Address already in use "
                    "(choose another port with --xds-port)")
    assert listing(work) == []


def test_one_port_for_both_listeners_is_refused_before_anything_is_written(work: Path) -> None:
    port = str(free_port())
    assert_one_line(attempt(work, "--api-port", port, "--xds-port", port),
                    f"--api-port and --xds-port are both {port}: the HTTP API and the ADS server need a port each")
    assert listing(work) == []


@pytest.mark.parametrize("flag", ["--admin-token-file", "--signing-key-file"])
def test_file_in_a_missing_directory_is_one_line_and_nothing_written(work: Path, flag: str) -> None:
    target = work / "typo" / "file"
    expected = (f"--admin-token-file {target}: directory {target.parent} does not exist" if flag == "--admin-token-file"
                else f"cannot create the signing key {target}: directory {target.parent} does not exist")
    assert_one_line(attempt(work, flag, str(target)), expected)
    assert listing(work) == []


def test_corrupt_database_is_one_line(work: Path) -> None:
    db = work / "cp.db"
    with closing(sqlite3.connect(db)) as conn, conn:
        conn.execute("CREATE TABLE filler (x TEXT)")
        conn.executemany("INSERT INTO filler VALUES (?)", [("x" * 200,) for _ in range(200)])
    checkpoint(db)
    damage(db, leaf_pages(db, "filler")[1:2])
    before = listing(work)
    result = attempt(work, "--store", f"sqlite:{db}")
    assert result.returncode == 1 and len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith(f"Error: sqlite database {db} is "), result.stderr
    assert "Traceback" not in result.stderr
    assert listing(work) == [*before, "cp.db.lock"]  # no signing key: the store is checked first


@pytest.fixture
def running(work: Path) -> Iterator[Server]:
    server = start_server(f"sqlite:{work / 'cp.db'}", work.parent / "first.log")
    yield server
    assert server.stop() == 0, server.log()


def test_second_control_plane_on_one_sqlite_file_is_refused(work: Path, running: Server) -> None:
    before = listing(work)
    result = attempt(work, "--store", f"sqlite:{work / 'cp.db'}", "--api-port", str(free_port()))
    assert_one_line(result, f"sqlite database {work / 'cp.db'} is in use by another process "
                            f"(pid {running.process.pid}); {ONE_OWNER}")
    assert listing(work) == before
    eventually(lambda: running.get("/ready")[0] == 200, "the first control plane stopped being ready")


@pytest.mark.parametrize("command", [("import", "-f", "-"), ("export",)], ids=["import", "export"])
def test_import_and_export_refuse_a_file_a_control_plane_holds(work: Path, running: Server,
                                                               command: tuple[str, ...]) -> None:
    db = work / "cp.db"
    result = run_cli(*command, "--store", f"sqlite:{db}", url=running.url, stdin="type: Mesh\nname: m\n")
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (f"Error: sqlite database {db} is in use by another process (pid {running.process.pid}); "
                             "stop that control plane first, or export/import through its API (without --store)\n")
    assert running.get("/meshes/m")[0] == 404


def test_export_of_a_missing_file_is_an_error_and_creates_nothing(work: Path) -> None:
    result = run_cli("export", "--store", f"sqlite:{work / 'missing.db'}", url="http://127.0.0.1:1")
    assert (result.returncode, result.stdout, result.stderr) == (
        1, "", f"Error: sqlite database {work / 'missing.db'} does not exist\n")
    assert listing(work) == []


def test_export_to_a_file_leaves_no_partial_file_on_failure(work: Path) -> None:
    result = run_cli("export", "-o", str(work / "out.yaml"), url="http://127.0.0.1:1")
    assert result.returncode == 1 and result.stderr.startswith("Error: cannot reach the control plane")
    assert listing(work) == []


def test_pid_in_the_lock_file_is_the_holder(work: Path, running: Server) -> None:
    assert (work / "cp.db.lock").read_text() == f"{running.process.pid}\n"
    assert os.stat(work / "cp.db.lock").st_mode & 0o077 == 0


@pytest.fixture
def unloadable(work: Path) -> tuple[Path, str]:
    """An SQLite store whose Dataplane row no longer decodes (quick_check passes: the pages are intact), so
    the first load is held back deterministically (the reconciler retries with back-off). Returns the
    database and the row's good spec, to put back."""
    db = work / "cp.db"
    seeded = start_server(f"sqlite:{db}", work.parent / "seed.log")
    try:
        eventually(lambda: seeded.get("/ready")[0] == 200, "/ready never became 200 on an empty store")
        for path, body in [("/meshes/default", {"type": "Mesh", "name": "default"}),
                           ("/meshes/default/dataplanes/dp-1", {"type": "Dataplane", "mesh": "default", "name": "dp-1",
                            "networking": {"address": "10.0.0.1",
                                           "inbound": [{"port": 8080, "tags": {"kuma.io/service": "web"}}]}})]:
            assert http_json("PUT", seeded.url + path, body)[0] == 201
    finally:
        assert seeded.stop() == 0
    with closing(sqlite3.connect(db)) as conn, conn:
        good = conn.execute("SELECT spec FROM resources WHERE name = 'dp-1'").fetchone()[0]
        conn.execute("UPDATE resources SET spec = '{\"networking\": ' WHERE name = 'dp-1'")
    return db, str(good)


def test_ready_is_503_until_the_first_generation_has_published(work: Path, unloadable: tuple[Path, str]) -> None:
    """The API answers at once; `/ready` only once every proxy's config is generated."""
    db, good = unloadable
    server = start_server(f"sqlite:{db}", work.parent / "cp.log")  # returns once GET / answers
    try:
        assert server.get("/ready") == (503, {"status": "not ready", "reason": NOT_READY})
        assert server.get("/meshes/default")[0] == 200  # the API works meanwhile
        eventually(lambda: server.log().count("store_unavailable") >= 2, "the first load is not retried")
        assert server.get("/ready")[0] == 503
        with closing(sqlite3.connect(db)) as conn, conn:
            conn.execute("UPDATE resources SET spec = ? WHERE name = 'dp-1'", (good,))
        eventually(lambda: server.get("/ready")[0] == 200, "/ready never became 200")
        assert server.get("/ready") == (200, {"status": "ok"})
        assert "reconciler_ready" in server.log()
        assert server.process.poll() is None
    finally:
        assert server.stop() == 0, server.log()


def test_sigterm_while_still_loading_stops_cleanly(work: Path, unloadable: tuple[Path, str]) -> None:
    server = start_server(f"sqlite:{unloadable[0]}", work.parent / "cp.log")
    assert server.get("/ready")[0] == 503
    assert server.stop() == 0, server.log()  # within STOP_TIMEOUT_S, though it never became ready
    assert "control_plane_stopping" in server.log() and "Traceback" not in server.log()
    assert "store_closed" in server.log()


def eventually(predicate: Callable[[], bool], message: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, message
        time.sleep(0.05)


async def test_a_port_taken_between_the_check_and_the_bind_is_the_same_one_line(squatter: int) -> None:
    """The check binds and lets go; if someone takes the port before the real bind, grpc's RuntimeError
    and aiohttp's OSError become the same line (run.py's `_start_ads` / api_serving.py's `start_api`)."""
    config = RunConfig("memory", "127.0.0.1", squatter, "127.0.0.1", squatter, 0.1, 1.0)
    metrics = Metrics()
    with pytest.raises(StartupError) as ads:
        await _start_ads(config, SnapshotCache(), MetricsObserver(metrics), StatusRegistry(), None, None)
    with pytest.raises(StartupError) as api:
        await start_api(create_app(MemoryStore(), metrics), config, None)
    in_use = f"127.0.0.1:{squatter}: Address already in use"
    assert [str(ads.value), str(api.value)] == [
        f"cannot listen for the ADS server on {in_use} (choose another port with --xds-port)",
        f"cannot listen for the HTTP API on {in_use} (choose another port with --api-port)",
    ]
