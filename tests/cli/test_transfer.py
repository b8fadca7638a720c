"""`controlplane export` / `import`: a store round-trips SQLite → PostgreSQL → SQLite with nothing lost.

Real processes (the console script) against real stores: a `controlplane run` on SQLite for the API path,
and the throwaway PostgreSQL server of tests/postgres_fixture.py for the direct-store path.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from cli_helpers import run_cli, start_server
from postgres_fixture import create_database, drop_database
from postgres_server import PostgresServer

from controlplane.resources.yaml_loader import MAX_DOCUMENTS

SETUP = """\
type: Mesh
name: default
tracing:
  defaultBackend: jaeger-collector
  backends:
  - name: jaeger-collector
    type: zipkin
    sampling: 25.0
    url: http://jaeger:9411/api/v2/spans
---
type: Mesh
name: other
---
type: TrafficTrace
name: trace-all-traffic
mesh: default
selectors:
- match:
    kuma.io/service: '*'
backend: jaeger-collector
---
type: TrafficTrace
name: trace-web
mesh: default
selectors:
- match:
    kuma.io/service: web
---
type: Dataplane
mesh: default
name: web-1
networking:
  address: 10.0.0.1
  inbound:
  - port: 8080
    tags: {kuma.io/service: web, kuma.io/protocol: http}
  outbound:
  - port: 10001
    tags: {kuma.io/service: backend}
"""


def ok(*args: str, url: str = "http://127.0.0.1:1", stdin: str | None = None) -> str:
    result = run_cli(*args, url=url, stdin=stdin)
    assert result.returncode == 0, result.stderr
    return result.stdout


async def test_round_trip_sqlite_postgres_sqlite_keeps_everything(
    tmp_path: Path, postgres_server: PostgresServer
) -> None:
    server = start_server(f"sqlite:{tmp_path / 'a.db'}", tmp_path / "a.log")
    try:
        ok("apply", "-f", "-", url=server.url, stdin=SETUP)
        through_api = ok("export", url=server.url)
    finally:
        server.stop()
    exported = ok("export", "--store", f"sqlite:{tmp_path / 'a.db'}")
    assert list(yaml.safe_load_all(through_api)) == list(yaml.safe_load_all(exported))
    kinds = [(d["type"], d["name"]) for d in yaml.safe_load_all(exported)]
    assert kinds == [("Mesh", "default"), ("Mesh", "other"), ("TrafficTrace", "trace-all-traffic"),
                     ("TrafficTrace", "trace-web"), ("Dataplane", "web-1")]

    pg_url = await create_database(postgres_server)
    try:
        assert ok("import", "-f", "-", "--store", pg_url, stdin=exported).count("created") == 5
        from_postgres = ok("export", "--store", pg_url)
    finally:
        await drop_database(postgres_server, pg_url)
    assert from_postgres == exported  # specs and creation/modification times, byte for byte

    ok("import", "-f", "-", "--store", f"sqlite:{tmp_path / 'b.db'}", stdin=from_postgres)
    assert ok("export", "--store", f"sqlite:{tmp_path / 'b.db'}") == exported


def test_import_through_the_api_applies_meshes_first(tmp_path: Path) -> None:
    documents = list(yaml.safe_load_all(SETUP))
    reversed_export = yaml.safe_dump_all(documents[::-1], sort_keys=False)
    server = start_server(f"sqlite:{tmp_path / 'c.db'}", tmp_path / "c.log")
    try:
        output = ok("import", "-f", "-", url=server.url, stdin=reversed_export)
        assert [line.split()[0] for line in output.splitlines()[:2]] == ["Mesh", "Mesh"]
        assert output.count("created") == 5
        assert [d["name"] for d in yaml.safe_load_all(ok("export", url=server.url))] == [
            "default", "other", "trace-all-traffic", "trace-web", "web-1"]
    finally:
        server.stop()


def test_invalid_import_writes_nothing(tmp_path: Path) -> None:
    bad = SETUP.replace("sampling: 25.0", "sampling: 250.0")
    result = run_cli("import", "-f", "-", "--store", f"sqlite:{tmp_path / 'd.db'}", url="http://127.0.0.1:1",
                     stdin=bad)
    assert result.returncode == 1
    assert "tracing.backends[0].sampling: has to be in [0.0 - 100.0] range" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # not even an empty database


def test_import_refuses_a_duplicate_key(tmp_path: Path) -> None:
    """The streaming reader of `import` refuses `name:` twice as `apply` does (PyYAML would keep the last)."""
    bad = SETUP.replace("name: web-1\n", "name: web-1\nname: web-2\n")
    result = run_cli("import", "-f", "-", "--store", f"sqlite:{tmp_path / 'f.db'}", url="http://127.0.0.1:1",
                     stdin=bad)
    assert (result.returncode, result.stderr) == (1, (
        'Error: invalid YAML: line 32, column 1: duplicate key "name" (first set on line 31)\nnothing was imported\n'))
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_import_with_a_bad_timestamp_is_a_clear_error(tmp_path: Path) -> None:
    bad = "type: Mesh\nname: x\ncreationTime: yesterday\n"
    result = run_cli("import", "-f", "-", "--store", f"sqlite:{tmp_path / 'e.db'}", url="http://127.0.0.1:1",
                     stdin=bad)
    assert (result.returncode, result.stderr) == (1, (
        "Error: document 1: creationTime: must be an RFC 3339 time with a zone, e.g. 2024-01-02T03:04:05Z, "
        "got 'yesterday'\n"))


def many_dataplanes(count: int) -> str:
    """One mesh and `count` Dataplanes, Dataplanes first (an import writes meshes first whatever the order)."""
    documents: list[dict[str, object]] = [
        {"type": "Dataplane", "mesh": "big", "name": f"dp-{i}", "networking": {
            "address": "10.0.0.1", "inbound": [{"port": 1000 + i, "tags": {"kuma.io/service": f"svc-{i // 10}"}}]}}
        for i in range(count)]
    return yaml.safe_dump_all([*documents, {"type": "Mesh", "name": "big"}], explicit_start=True)


def test_import_through_the_api_takes_more_documents_than_apply(tmp_path: Path) -> None:
    text = many_dataplanes(MAX_DOCUMENTS + 1)
    server = start_server(f"sqlite:{tmp_path / 'big.db'}", tmp_path / "big.log")
    try:
        refused = run_cli("apply", "-f", "-", url=server.url, stdin=text)  # apply keeps its cap
        assert (refused.returncode, refused.stderr) == (1, ("Error: invalid YAML: more than 1000 documents; "
                                                            "split the input into several applies\n"))
        output = ok("import", "-f", "-", url=server.url, stdin=text)
        assert output.splitlines()[0] == 'Mesh "big" created'
        assert output.count(" created\n") == MAX_DOCUMENTS + 2
        assert server.get("/meshes/big/dataplanes?size=1")[1]["total"] == MAX_DOCUMENTS + 1
    finally:
        server.stop()


def test_import_refuses_a_mesh_that_is_neither_in_the_input_nor_the_store(tmp_path: Path) -> None:
    text = "type: Dataplane\nmesh: nowhere\nname: dp-1\nnetworking:\n  address: 10.0.0.1\n  inbound:\n" \
           "  - port: 8080\n    tags: {kuma.io/service: web}\n"
    result = run_cli("import", "-f", "-", "--store", f"sqlite:{tmp_path / 'f.db'}", url="http://127.0.0.1:1",
                     stdin=text)
    assert (result.returncode, result.stdout, result.stderr) == (1, "", (
        "Error: mesh of name nowhere is not found: it is neither in the input nor in the store; "
        "nothing was imported\n"))
    assert not (tmp_path / "f.db").exists()


def test_invalid_documents_are_all_reported_up_to_a_limit(tmp_path: Path) -> None:
    bad = "".join(f"---\ntype: Mesh\nname: Bad{i}\n" for i in range(25))
    result = run_cli("import", "-f", "-", "--store", f"sqlite:{tmp_path / 'g.db'}", url="http://127.0.0.1:1",
                     stdin="type: Mesh\nname: good\n" + bad)
    lines = result.stderr.splitlines()
    assert (result.returncode, lines[0], lines[-2:]) == (1, 'Error: document 2 (Mesh "Bad0") is not valid:',
                                                         ["... and 5 more invalid documents", "nothing was imported"])
    assert sum(line.endswith("is not valid:") for line in lines) == 20
    assert not (tmp_path / "g.db").exists()
