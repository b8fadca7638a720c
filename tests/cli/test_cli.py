"""The `controlplane` console script against a real `controlplane run` process (kumactl contract, §5.4).

One sqlite-backed server serves the module; tests that use the docs' mesh `default` start from a clean one
(`clean_default`), others use their own mesh names, so tests do not depend on each other's order. Restart
persistence and the examples/ check start their own servers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cli_helpers import Server, assert_gone, http_json, run_cli, start_server

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
ZIPKIN_MESH = EXAMPLES / "zipkin-mesh.yaml"
DATADOG_MESH = EXAMPLES / "datadog-mesh.yaml"
TRACE_ALL = EXAMPLES / "trace-all-traffic.yaml"
TIMESTAMPS = ("creationTime", "modificationTime")
TAG_CHARS = "consist of alphanumeric characters, dots, dashes, slashes and underscores"
JAEGER_URL = "http://my-jaeger-collector:9411/api/v2/spans"
ZIPKIN_CANONICAL = {"type": "Mesh", "name": "default", "tracing": {
    "defaultBackend": "jaeger-collector",
    "backends": [{"name": "jaeger-collector", "sampling": 100.0, "type": "zipkin", "conf": {"url": JAEGER_URL}}],
}}
TRACE_ALL_CANONICAL = {"type": "TrafficTrace", "mesh": "default", "name": "trace-all-traffic",
                       "labels": {"kuma.io/mesh": "default"}, "selectors": [{"match": {"kuma.io/service": "*"}}], "conf": {"backend": "jaeger-collector"}}


def without_times(doc: dict[str, Any]) -> dict[str, Any]:
    for key in TIMESTAMPS:
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", doc[key]), doc[key]
    return {k: v for k, v in doc.items() if k not in TIMESTAMPS}


def table_rows(stdout: str) -> list[list[str]]:
    """A CLI table as rows of cells (columns are separated by runs of 2+ spaces)."""
    return [re.split(r"\s{2,}", line.strip()) for line in stdout.strip().splitlines()]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`controlplane run --store sqlite:<tmp>/cp.db`, stopped with SIGTERM; it must exit 0 and be gone."""
    tmp = tmp_path_factory.mktemp("cli")
    srv = start_server(f"sqlite:{tmp / 'cp.db'}", tmp / "server.log")
    yield srv
    code = srv.stop()
    assert code == 0, f"server exited with {code} on SIGTERM:\n{srv.log()}"
    assert_gone(srv)


@pytest.fixture
def clean_default(server: Server) -> Server:
    """The shared server without a mesh `default` (deleting the mesh cascades to its TrafficTraces)."""
    status, _ = http_json("DELETE", server.url + "/meshes/default")
    assert status in (200, 404)
    return server


def apply(server: Server, *args: str, stdin: str | None = None) -> Any:
    return run_cli("apply", *args, url=server.url, stdin=stdin)


def test_docs_yaml_applies_as_written(clean_default: Server) -> None:
    """The docs' zipkin Mesh and TrafficTrace apply unchanged; applying again reports `unchanged`."""
    first = apply(clean_default, "-f", str(ZIPKIN_MESH))
    assert (first.returncode, first.stdout, first.stderr) == (0, 'Mesh "default" created\n', "")
    again = apply(clean_default, "-f", str(ZIPKIN_MESH))
    assert (again.returncode, again.stdout) == (0, 'Mesh "default" unchanged\n')
    trace = apply(clean_default, "-f", str(TRACE_ALL))
    assert (trace.returncode, trace.stdout, trace.stderr) == (0, 'TrafficTrace "default/trace-all-traffic" created\n', "")
    status, body = clean_default.get("/meshes/default/traffic-traces/trace-all-traffic")
    assert (status, without_times(body)) == (200, TRACE_ALL_CANONICAL)


def test_get_shows_canonical_form_and_tables(clean_default: Server) -> None:
    """`get` prints canonical YAML/JSON (conf.url, conf.backend) and kumactl's table columns."""
    apply(clean_default, "-f", "-", stdin=ZIPKIN_MESH.read_text() + "---\n" + TRACE_ALL.read_text())

    listed = run_cli("get", "meshes", "-o", "yaml", url=clean_default.url)
    assert listed.returncode == 0, listed.stderr
    meshes = yaml.safe_load(listed.stdout)
    assert set(meshes) == {"total", "items", "next"}
    assert [without_times(m) for m in meshes["items"] if m["name"] == "default"] == [ZIPKIN_CANONICAL]

    mesh_table = table_rows(run_cli("get", "meshes", url=clean_default.url).stdout)
    assert mesh_table[0] == ["NAME", "TRACING", "AGE"]
    row = next(r for r in mesh_table[1:] if r[0] == "default")
    assert row[1] == "zipkin/jaeger-collector" and re.fullmatch(r"\d+[smhd]", row[2])

    traces = run_cli("get", "traffic-traces", "-m", "default", url=clean_default.url)
    rows = table_rows(traces.stdout)
    assert (traces.returncode, rows[0], [r[:2] for r in rows[1:]]) == (
        0, ["MESH", "NAME", "AGE"], [["default", "trace-all-traffic"]])

    one = run_cli("get", "traffic-trace", "trace-all-traffic", "-m", "default", "-o", "json", url=clean_default.url)
    assert one.returncode == 0, one.stderr
    assert without_times(json.loads(one.stdout)) == TRACE_ALL_CANONICAL


def test_datadog_docs_mesh_replaces_zipkin(clean_default: Server) -> None:
    """The docs' datadog Mesh is applied as an update of `default`.

    The docs show it as the alternative configuration of the same mesh (both are named `default`), so a
    user following them replaces the zipkin backend; a renamed copy would test nothing the zipkin case
    does not. After the switch the TrafficTrace still names jaeger-collector, which apply warns about.
    """
    apply(clean_default, "-f", "-", stdin=ZIPKIN_MESH.read_text() + "---\n" + TRACE_ALL.read_text())
    switched = apply(clean_default, "-f", str(DATADOG_MESH))
    assert (switched.returncode, switched.stdout) == (0, 'Mesh "default" updated\n')
    rows = table_rows(run_cli("get", "meshes", url=clean_default.url).stdout)
    assert next(r for r in rows if r[0] == "default")[1] == "datadog/datadog-collector"
    status, body = clean_default.get("/meshes/default")
    assert (status, body["tracing"]) == (200, {"backends": [{
        "name": "datadog-collector", "sampling": 100.0, "type": "datadog",
        "conf": {"address": "127.0.0.1", "port": 8126}}]})

    trace = apply(clean_default, "-f", str(TRACE_ALL))
    assert (trace.returncode, trace.stdout) == (0, 'TrafficTrace "default/trace-all-traffic" unchanged\n')
    assert 'tracing backend "jaeger-collector" is not defined in the mesh (defined: datadog-collector)' in trace.stderr


def test_get_pages_with_hint(server: Server) -> None:
    """`get --size` shows one page and kumactl's hint for the next offset."""
    for name in ("page-a", "page-b"):
        apply(server, "-f", "-", stdin=f"type: Mesh\nname: {name}\n")
    result = run_cli("get", "meshes", "--size", "1", url=server.url)
    lines = result.stdout.splitlines()
    assert (result.returncode, len(lines)) == (0, 4)
    assert lines[-2:] == ["", "Rerun command with --offset=1 argument to retrieve more resources"]


def test_var_substitution(server: Server, tmp_path: Path) -> None:
    """`--var k=v` fills `{{ k }}`; a dotted key fills `{{ a.b }}` (kumactl's nested variables)."""
    template = tmp_path / "templated.yaml"
    template.write_text(
        "type: Mesh\nname: templated\ntracing:\n  backends:\n  - name: zipkin\n    type: zipkin\n"
        "    sampling: {{ sampling }}\n    url: http://{{ collector.host }}:9411/api/v2/spans\n"
    )
    result = apply(server, "-f", str(template), "--var", "sampling=25.5", "-v", "collector.host=zipkin.local")
    assert (result.returncode, result.stdout) == (0, 'Mesh "templated" created\n'), result.stderr
    _, body = server.get("/meshes/templated")
    assert body["tracing"]["backends"] == [{"name": "zipkin", "sampling": 25.5, "type": "zipkin",
                                            "conf": {"url": "http://zipkin.local:9411/api/v2/spans"}}]


def test_dry_run_writes_nothing(server: Server) -> None:
    """`--dry-run` reports what would happen, for a create and for an update, and writes nothing."""
    text = ZIPKIN_MESH.read_text().replace("name: default", "name: dry")
    created = apply(server, "-f", "-", "--dry-run", stdin=text)
    assert (created.returncode, created.stdout) == (0, 'Mesh "dry" created (dry run, nothing written)\n')
    assert server.get("/meshes/dry")[0] == 404

    apply(server, "-f", "-", stdin=text)
    _, before = server.get("/meshes/dry")
    updated = apply(server, "-f", "-", "--dry-run", stdin=text.replace("100.0", "1.0"))
    assert (updated.returncode, updated.stdout) == (0, 'Mesh "dry" updated (dry run, nothing written)\n')
    assert server.get("/meshes/dry") == (200, before)


def test_apply_from_stdin(server: Server) -> None:
    """`apply -f -` reads the documents from stdin."""
    text = ZIPKIN_MESH.read_text().replace("name: default", "name: from-stdin")
    first = apply(server, "-f", "-", stdin=text)
    assert (first.returncode, first.stdout) == (0, 'Mesh "from-stdin" created\n')
    assert apply(server, "-f", "-", stdin=text).stdout == 'Mesh "from-stdin" unchanged\n'


MULTI_DOCUMENT = """\
type: Mesh
name: multi
tracing:
  backends:
  - name: zipkin
    type: zipkin
    url: http://zipkin:9411/api/v2/spans
---
type: TrafficTrace
name: bad-trace
selectors:
- match:
    kuma.io/service: ''
    version: 'a b'
---
type: Mesh
name: multi-2
tracing:
  defaultBackend: missing
  backends:
  - type: datadog
    sampling: 200
    conf:
      port: 0
"""


def test_invalid_document_applies_nothing(server: Server) -> None:
    """One bad document: exit != 0, every violation printed as `field: message`, and nothing applied."""
    result = apply(server, "-f", "-", stdin=MULTI_DOCUMENT)
    assert result.returncode != 0
    lines = [line.strip() for line in result.stderr.splitlines()]
    assert [line for line in lines if ": " in line and not line.startswith(("Error", "document"))] == [
        "mesh: cannot be empty",
        'selectors[0].match["kuma.io/service"]: tag value must be non-empty',
        f'selectors[0].match["version"]: tag value must {TAG_CHARS} or be "*"',
        "tracing.backends[0].name: cannot be empty",
        "tracing.backends[0].sampling: has to be in [0.0 - 100.0] range",
        "tracing.backends[0].config.address: cannot be empty",
        "tracing.backends[0].config.port: port must be in the range [1, 65535]",
        "tracing.defaultBackend: has to be set to one of the tracing backend in mesh",
    ]
    assert "nothing was applied" in result.stderr and "Traceback" not in result.stderr
    assert server.get("/meshes/multi")[0] == 404
    assert server.get("/meshes/multi-2")[0] == 404


NULLS = """\
type: TrafficTrace
name: null-selector
mesh: default
selectors: [null]
---
type: Dataplane
name: null-tags
mesh: default
networking:
  address: 10.0.0.1
  inbound:
  - port: 8080
    tags:
      kuma.io/service:
  - null
  outbound:
  - port: 10001
    tags:
      kuma.io/service:
"""


def test_keys_without_values_are_violations_not_a_traceback(server: Server) -> None:
    """`kuma.io/service:` alone and null list items are read as Kuma reads them and get Kuma's messages."""
    result = apply(server, "-f", "-", stdin=NULLS)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        'Error: document 1 (TrafficTrace "null-selector") is not valid:\n'
        "  selectors[0].match: must have at least one tag\n"
        'document 2 (Dataplane "null-tags") is not valid:\n'
        '  networking.inbound[0].tags["kuma.io/service"]: tag value must be non-empty\n'
        "  networking.inbound[1].port: port must be in the range [1, 65535]\n"
        '  networking.inbound[1].tags["kuma.io/service"]: tag has to exist\n'
        '  networking.outbound[0].tags["kuma.io/service"]: tag value must be non-empty\n'
        "nothing was applied\n"
    )
    assert server.get("/meshes/default/traffic-traces/null-selector")[0] == 404


def test_duplicate_key_is_one_line_naming_it(server: Server) -> None:
    result = apply(server, "-f", "-", stdin="type: Mesh\nname: dup-a\nname: dup-b\n")
    assert (result.returncode, result.stderr) == (
        1, 'Error: invalid YAML: line 3, column 1: duplicate key "name" (first set on line 2)\n')
    assert (server.get("/meshes/dup-a")[0], server.get("/meshes/dup-b")[0]) == (404, 404)


def test_server_rejection_is_printed_as_field_message(server: Server) -> None:
    """A 400 from the API is printed as `<title> (<details>)` then one `field: message` line per cause."""
    text = TRACE_ALL.read_text().replace("mesh: default", "mesh: ghost")
    result = apply(server, "-f", "-", stdin=text)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        'Error: TrafficTrace "ghost/trace-all-traffic": Could not create a resource (Mesh is not found)\n'
        "mesh: mesh of name ghost is not found\n"
    )


def test_malformed_yaml_names_the_line(server: Server) -> None:
    """A YAML syntax error is one message naming line and column, not a traceback."""
    result = apply(server, "-f", "-", stdin="type: Mesh\nname: broken\n  tracing: [\n")
    assert result.returncode == 1
    assert result.stderr.startswith("Error: invalid YAML: line 3, column ")
    assert "Traceback" not in result.stderr
    assert server.get("/meshes/broken")[0] == 404


@pytest.mark.parametrize("text", ["", "\n\n", "---\n---\n", "# only a comment\n"], ids=["empty", "blank", "separators", "comment"])
def test_empty_input(server: Server, text: str) -> None:
    """No documents at all is kumactl's `no resource(s) passed to apply`."""
    result = apply(server, "-f", "-", stdin=text)
    assert (result.returncode, result.stderr) == (1, "Error: no resource(s) passed to apply\n")


def test_missing_file_is_one_line(server: Server, tmp_path: Path) -> None:
    """A file that cannot be read is a one-line error naming it."""
    missing = tmp_path / "missing.yaml"
    result = apply(server, "-f", str(missing))
    assert (result.returncode, result.stderr) == (1, f"Error: {missing}: No such file or directory\n")


def test_delete_traffic_trace(clean_default: Server) -> None:
    """`delete` prints kumactl's line; deleting again says there is no such resource and exits 1."""
    apply(clean_default, "-f", "-", stdin=ZIPKIN_MESH.read_text() + "---\n" + TRACE_ALL.read_text())
    deleted = run_cli("delete", "traffic-trace", "trace-all-traffic", "-m", "default", url=clean_default.url)
    assert (deleted.returncode, deleted.stdout) == (0, 'deleted TrafficTrace "trace-all-traffic"\n')
    assert clean_default.get("/meshes/default/traffic-traces/trace-all-traffic")[0] == 404
    again = run_cli("delete", "traffic-trace", "trace-all-traffic", "-m", "default", url=clean_default.url)
    assert (again.returncode, again.stderr) == (1, 'Error: there is no TrafficTrace with name "trace-all-traffic"\n')
    missing = run_cli("get", "traffic-trace", "trace-all-traffic", "-m", "default", url=clean_default.url)
    assert (missing.returncode, missing.stderr) == (1, 'Error: there is no TrafficTrace with name "trace-all-traffic"\n')


def test_names_cannot_smuggle_path_segments(clean_default: Server) -> None:
    """A name with slashes is one (non-existent) resource, never another resource's URL."""
    apply(clean_default, "-f", "-", stdin=ZIPKIN_MESH.read_text() + "---\n" + TRACE_ALL.read_text())
    smuggled = run_cli("delete", "mesh", "default/traffic-traces/trace-all-traffic", url=clean_default.url)
    assert smuggled.returncode == 1
    assert clean_default.get("/meshes/default/traffic-traces/trace-all-traffic")[0] == 200


def test_get_unknown_type_lists_allowed_values(server: Server) -> None:
    """`get` of an unknown type is a usage error listing the allowed types."""
    result = run_cli("get", "circuit-breakers", url=server.url)
    assert result.returncode == 2
    assert ("unknown TYPE: circuit-breakers. Allowed values: meshes, traffic-traces, meshtraces, dataplanes, "
            "mesh, traffic-trace, meshtrace, dataplane") in result.stderr


@pytest.mark.parametrize("args", [("get", "meshes"), ("apply", "-f", str(ZIPKIN_MESH)),
                                  ("delete", "mesh", "default")], ids=["get", "apply", "delete"])
def test_unreachable_api_is_one_line(args: tuple[str, ...]) -> None:
    """No server: one line naming the URL, no traceback, exit 1."""
    result = run_cli(*args, url="http://127.0.0.1:1")
    assert result.returncode == 1
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith("Error: cannot reach the control plane at http://127.0.0.1:1")


def test_restart_keeps_everything(tmp_path: Path) -> None:
    """After SIGTERM and a restart on the same sqlite file, every resource is back with the same times."""
    store = f"sqlite:{tmp_path / 'persist.db'}"
    first = start_server(store, tmp_path / "first.log")
    try:
        applied = apply(first, "-f", "-", stdin=ZIPKIN_MESH.read_text() + "---\n" + TRACE_ALL.read_text())
        assert applied.returncode == 0, applied.stderr
        before = [first.get(p) for p in ("/meshes", "/traffic-traces", "/dataplanes")]
    finally:
        assert first.stop() == 0, first.log()
    assert_gone(first)
    assert before[0][1]["total"] == 1 and before[1][1]["total"] == 1

    second = start_server(store, tmp_path / "second.log")
    try:
        assert [second.get(p) for p in ("/meshes", "/traffic-traces", "/dataplanes")] == before
        assert apply(second, "-f", str(ZIPKIN_MESH)).stdout == 'Mesh "default" unchanged\n'
    finally:
        assert second.stop() == 0, second.log()


@pytest.fixture(scope="module")
def examples_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A fresh in-memory server just for the examples/ check."""
    tmp = tmp_path_factory.mktemp("examples")
    srv = start_server("memory", tmp / "server.log")
    yield srv
    assert srv.stop() == 0, srv.log()


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_example_applies(examples_server: Server, path: Path) -> None:
    """Every YAML file in examples/ applies. A file whose resources live in a mesh it does not define gets
    that mesh created first (empty), so files stay independent of each other and of test order."""
    documents = [d for d in yaml.safe_load_all(path.read_text()) if d]
    defined = {d["name"] for d in documents if d.get("type") == "Mesh"}
    for mesh in {d["mesh"] for d in documents if d.get("type") != "Mesh"} - defined:
        if examples_server.get(f"/meshes/{mesh}")[0] == 404:
            assert http_json("PUT", f"{examples_server.url}/meshes/{mesh}", {"type": "Mesh", "name": mesh})[0] == 201
    result = apply(examples_server, "-f", str(path))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == len(documents)
    assert all(re.fullmatch(r'\w+ "[\w./-]+" (created|updated|unchanged)', line) for line in lines), lines
