"""A 100k-resource store round-trips through `export`/`import` byte for byte in bounded memory, and a
control plane started on it answers `/ready` 503 while it loads, 200 once every proxy's config is out.

1000 services x 100 Dataplanes (plus a Mesh and a TrafficTrace), ~30 MB of YAML: ten times what
`apply` accepts in documents and four times its byte cap. Real processes throughout; each step's wall time
and peak RSS (`wait4`) are printed (run with `-s` to see them) and the RSS has a generous bound that only
an import holding the whole input (the old one was well over a gigabyte) would break.
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from cli_helpers import controlplane_script, start_server

from controlplane.cli.transfer import to_yaml

SERVICES, PER_SERVICE = 1000, 100
RSS_BOUND_MB = 600  # measured: 72-323 MB for an import (allocator-dependent), whatever the input size; the
# import that held the whole input took well over a gigabyte
READY_TIMEOUT_S = 900.0

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(3600)]


@dataclass(frozen=True)
class Measured:
    seconds: float
    peak_rss_mb: float
    stdout_lines: int


def measure(*args: str, cwd: Path) -> Measured:
    """Run the console script to completion; wall time and peak RSS of that one child (not the test's)."""
    started = time.perf_counter()
    with (cwd / "out.log").open("w") as out, (cwd / "err.log").open("w") as err:
        process = subprocess.Popen([controlplane_script(), *args], cwd=cwd, stdout=out, stderr=err,
                                   stdin=subprocess.DEVNULL)
        _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    assert process.returncode == 0, (cwd / "err.log").read_text()[-2000:]
    lines = sum(1 for _ in (cwd / "out.log").open())
    result = Measured(round(seconds, 1), round(usage.ru_maxrss / 1024, 1), lines)
    print(f"\nmeasured: controlplane {' '.join(args[:1])} ({args[-1]}): {result}")
    return result


def write_input(path: Path) -> None:
    """The generated store as an export would write it, written page by page (never all in memory)."""
    with path.open("w") as out:
        out.write(to_yaml([
            {"type": "Mesh", "name": "default", "tracing": {"defaultBackend": "zipkin", "backends": [
                {"name": "zipkin", "type": "zipkin", "sampling": 50.0, "conf": {"url": "http://zipkin:9411/api/v2/spans"}}]}},
            {"type": "TrafficTrace", "mesh": "default", "name": "all",
             "selectors": [{"match": {"kuma.io/service": "*"}}], "conf": {"backend": "zipkin"}}]))
        for s in range(SERVICES):
            out.write(to_yaml({"type": "Dataplane", "mesh": "default", "name": f"svc-{s}-{d}", "networking": {
                "address": f"10.{s // 250}.{s % 250}.{d + 1}",
                "inbound": [{"port": 8080, "servicePort": 18080,
                             "tags": {"kuma.io/service": f"svc-{s}", "kuma.io/protocol": "http"}}],
                "outbound": [{"port": 10001, "tags": {"kuma.io/service": f"svc-{(s + 1) % SERVICES}"}}]}}
                for d in range(PER_SERVICE)))


def test_100k_resources_round_trip_byte_for_byte_and_ready_waits_for_them(tmp_path: Path) -> None:
    total = SERVICES * PER_SERVICE + 2
    generated = tmp_path / "generated.yaml"
    write_input(generated)
    print(f"\nmeasured: input {generated.stat().st_size / 1e6:.1f} MB, {total} documents")

    first = measure("import", "-f", str(generated), "--store", f"sqlite:{tmp_path / 'a.db'}", cwd=tmp_path)
    exported = measure("export", "--store", f"sqlite:{tmp_path / 'a.db'}", "-o", str(tmp_path / "a.yaml"),
                       cwd=tmp_path)
    second = measure("import", "-f", str(tmp_path / "a.yaml"), "--store", f"sqlite:{tmp_path / 'b.db'}",
                     cwd=tmp_path)
    again = measure("export", "--store", f"sqlite:{tmp_path / 'b.db'}", "-o", str(tmp_path / "b.yaml"),
                    cwd=tmp_path)

    assert (first.stdout_lines, second.stdout_lines) == (total, total)  # one "created" line per resource
    assert (tmp_path / "a.yaml").read_bytes() == (tmp_path / "b.yaml").read_bytes()
    with (tmp_path / "a.yaml").open() as text:
        assert sum(line == "---\n" for line in text) == total
    for step in (first, exported, second, again):
        assert step.peak_rss_mb < RSS_BOUND_MB, step

    started = time.perf_counter()
    server = start_server(f"sqlite:{tmp_path / 'b.db'}", tmp_path / "cp.log")  # returns once GET / answers
    try:
        api_up = time.perf_counter() - started
        status, body = server.get("/ready")
        assert (status, body["status"]) == (503, "not ready"), body  # loading 100k Dataplanes takes a while
        while (status := server.get("/ready")[0]) != 200:
            assert status == 503
            assert time.perf_counter() - started < READY_TIMEOUT_S, "never ready"
            time.sleep(0.2)
        print(f"\nmeasured: run on 100k Dataplanes: API answering after {api_up:.1f} s, "
              f"/ready 200 after {time.perf_counter() - started:.1f} s")
    finally:
        assert server.stop() == 0, server.log()[-3000:]
