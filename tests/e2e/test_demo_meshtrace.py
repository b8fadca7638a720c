"""`controlplane demo --policy meshtrace` as a new user runs it (the style of test_demo.py): one command, real
Envoys, Kuma's MeshTrace docs YAML applied, the built-in receiver taking OTLP over gRPC or HTTP (or zipkin)
and printing the same trace trees, nothing left behind. Options that do not go together are refused before
anything starts.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from pathlib import Path
from typing import Final

import pytest

SCRIPT: Final = str(Path(sys.executable).parent / "controlplane")
OTEL_TRACE: Final = re.compile(r"^trace [0-9a-f]{32}  3 services \(backend, db, frontend\), 5 spans", re.MULTILINE)
ZIPKIN_TRACE: Final = re.compile(r"^trace [0-9a-f]{16}  3 services \(backend, db, frontend\), 5 spans", re.MULTILINE)
ENVOY_PIDS: Final = re.compile(r"(\w+-1) \(pid (\d+)\)")
DURATION_S: Final = 8


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state == "Z"


async def _demo(*args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        SCRIPT, "demo", "--duration", str(DURATION_S), *args, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(process.communicate(), DURATION_S + 60)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@pytest.mark.e2e
@pytest.mark.parametrize(("args", "receiver", "applied", "tree"), [
    (("--backend", "opentelemetry"), (r"built-in OTLP receiver: gRPC 127\.0\.0\.1:(\d+), HTTP \S+ "
     r"\(this demo exports over gRPC\)"), r"OpenTelemetry backend 127\.0\.0\.1:{port}, ", OTEL_TRACE),
    (("--backend", "opentelemetry", "--otlp-http"), (r"built-in OTLP receiver: gRPC \S+, HTTP "
     r"http://127\.0\.0\.1:(\d+)/v1/traces \(this demo exports over HTTP\)"),
     r"OpenTelemetry backend http://127\.0\.0\.1:{port}/v1/traces, ", OTEL_TRACE),
    (("--backend", "zipkin"), r"built-in zipkin receiver at http://127\.0\.0\.1:(\d+)/api/v2/spans",
     r"Zipkin backend http://127\.0\.0\.1:{port}/api/v2/spans, ", ZIPKIN_TRACE),
], ids=["otlp-grpc", "otlp-http", "zipkin"])
async def test_meshtrace_demo_prints_full_traces_and_cleans_up(
    args: tuple[str, ...], receiver: str, applied: str, tree: re.Pattern[str]
) -> None:
    code, stdout, stderr = await _demo("--policy", "meshtrace", *args)
    assert code == 0, stdout + stderr
    found = re.search(rf"^\[2/7 \+[\d.]+s\] {receiver}$", stdout, re.MULTILINE)
    assert found is not None, stdout
    assert re.search(rf"applied Mesh default and MeshTrace default \({applied.format(port=found.group(1))}"
                     r"tags team, env, version\)", stdout), stdout
    assert 'MeshTrace "default/default" created' in stdout
    assert tree.search(stdout), stdout
    server = "ingress" if tree is OTEL_TRACE else r"127\.0\.0\.1:\d+"
    assert re.search(rf"^            └─ db  server {server}  [\d.]+ ms  200$", stdout, re.MULTILINE), stdout
    assert re.search(r"^demo stopped: \d+ of \d+ traces spanned backend, db, frontend; first after", stdout,
                     re.MULTILINE), stdout
    for hint in ("controlplane get meshtraces", "controlplane inspect meshtrace default", "/_rules",
                 "controlplane delete meshtrace default"):
        assert hint in stdout, hint
    pids = {name: int(pid) for name, pid in ENVOY_PIDS.findall(stdout)}
    assert sorted(pids) == ["backend-1", "db-1", "frontend-1"], stdout
    assert all(_gone(pid) for pid in pids.values()), pids


@pytest.mark.parametrize(("args", "message"), [
    (("--backend", "opentelemetry"), ("--backend opentelemetry needs --policy meshtrace: a TrafficTrace traces "
     "with the Mesh's backends, which are zipkin or datadog")),
    (("--policy", "meshtrace", "--otel-endpoint", "127.0.0.1:4317"), ("--otel-endpoint goes with --backend "
     "opentelemetry")),
    (("--policy", "meshtrace", "--backend", "opentelemetry", "--otel-endpoint", "otel:0"),
     "--otel-endpoint 'otel:0': must be host:port, or an http:// or https:// URL"),
], ids=["otel-needs-meshtrace", "endpoint-needs-otel", "bad-endpoint"])
def test_options_that_do_not_go_together_are_refused_before_anything_starts(
    args: tuple[str, ...], message: str
) -> None:
    result = subprocess.run([SCRIPT, "demo", *args], capture_output=True, text=True, timeout=60, check=False)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.splitlines()[-1] == f"Error: {message}"
    assert "Traceback" not in result.stderr
