"""Kuma's MeshTrace docs YAML (examples/meshtrace-*.yaml) through the real CLI: what it stores and prints.

`tests/cli/test_cli.py::test_example_applies` applies every examples/ file; here: the files carry the docs'
YAML (their headers say where from), `get -o yaml` shows Kuma's schema defaults, the one docs example Kuma
itself would refuse (the east policy of "Targeting parts of the infrastructure", no `type`) gets Kuma's
message with nothing written, and the MeshSubset files print Kuma's deprecation warning.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import pytest
import yaml
from cli_helpers import Server, http_json, run_cli, start_server

EXAMPLES: Final = Path(__file__).resolve().parents[2] / "examples"
MESHTRACE_FILES: Final = sorted(EXAMPLES.glob("meshtrace-*.yaml"))
DOCS_SOURCE: Final = "kumahq/kuma-website a92a32a8, app/_src/policies/meshtrace.md"
OWN_EXAMPLES: Final = {"meshtrace-region-override.yaml", "meshtrace-otlp-http.yaml"}
DEPRECATED: Final = "MeshSubset value for 'targetRef.kind' is deprecated, use Dataplane with labels instead"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    srv = start_server("memory", tmp_path / "server.log")
    assert http_json("PUT", f"{srv.url}/meshes/default", {"type": "Mesh", "name": "default"})[0] == 201
    yield srv
    assert srv.stop() == 0, srv.log()


def test_examples_are_the_docs_yaml() -> None:
    names = {path.name for path in MESHTRACE_FILES}
    assert {"meshtrace-zipkin.yaml", "meshtrace-datadog-full.yaml", "meshtrace-opentelemetry-full.yaml",
            "meshtrace-zones-meshsubset.yaml"} <= names
    for path in MESHTRACE_FILES:
        if path.name not in OWN_EXAMPLES:
            assert DOCS_SOURCE in path.read_text().splitlines()[0], path.name


def test_docs_zipkin_example_gets_kumas_defaults(server: Server) -> None:
    path = EXAMPLES / "meshtrace-zipkin-full.yaml"
    result = run_cli("apply", "-f", str(path), url=server.url)
    assert (result.returncode, result.stdout, result.stderr) == (0, 'MeshTrace "default/default" created\n', "")
    shown = run_cli("get", "meshtrace", "default", "-o", "yaml", url=server.url)
    assert shown.returncode == 0, shown.stderr
    spec = yaml.safe_load(shown.stdout)["spec"]
    written = yaml.safe_load(path.read_text())["spec"]
    written["default"]["backends"][0]["zipkin"] |= {"traceId128bit": False, "sharedSpanContext": True}
    assert spec == written  # the docs' fields as written, plus the schema defaults Kuma fills in


def test_docs_east_policy_without_a_backend_type_is_refused_as_kuma_refuses_it(server: Server) -> None:
    """The docs print the east policy without `type: Zipkin`; Kuma 2.11's schema requires it, and so do we."""
    text = (EXAMPLES / "meshtrace-zones-meshsubset.yaml").read_text().split("---\n")[1]
    docs_east = "\n".join(line for line in text.splitlines()
                          if not line.startswith("#") and line.strip() != "- type: Zipkin")
    docs_east = docs_east.replace("        zipkin:", "      - zipkin:")
    assert "  backends:\n      - zipkin:\n          url: http://east.zipkincollector" in docs_east
    result = run_cli("apply", "-f", "-", url=server.url, stdin=docs_east)
    assert result.returncode == 1 and result.stdout == "", result
    assert result.stderr == ('Error: document 1 (MeshTrace "trace-east") is not valid:\n'
                             "  spec.default.backends[0].type: in body is required\nnothing was applied\n")
    assert http_json("GET", f"{server.url}/meshes/default/meshtraces")[1]["total"] == 0


def test_meshsubset_examples_print_kumas_deprecation_warning(server: Server) -> None:
    result = run_cli("apply", "-f", str(EXAMPLES / "meshtrace-zones-meshsubset.yaml"), url=server.url)
    assert result.returncode == 0, result.stderr
    names = ("default/trace-west", "default/trace-east")
    assert result.stdout.splitlines() == [f'MeshTrace "{name}" created' for name in names]
    warnings = re.findall(r"^warning: .*$", result.stderr, re.MULTILINE)
    assert warnings == [f'warning: MeshTrace "{name}": {DEPRECATED}' for name in names]
