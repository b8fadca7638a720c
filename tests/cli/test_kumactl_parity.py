"""kumactl habits with `controlplane` (issue 17): apply sources and variables, tables, labels, import words,
inspect; through the real console script against a real server.

Outputs are compared whole, as kumactl's golden files are (app/kumactl/cmd/*/testdata/*.golden.txt); the only
thing normalised is the AGE cell (the last column, so no other column's width depends on it), whose rules
have a unit test of their own (tests/unit/cli/test_kumactl_output.py).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from cli_helpers import Server, run_cli, start_server
from parity_helpers import ok, put, serve_files, templated_dir

AGE = re.compile(r"^(.*\S)   (\d+[smhdy])$")
DEADLINE_S = 10.0


def normalise_age(text: str) -> str:
    """Each table row's AGE cell as <age>; a value that is not an AGE is left for the comparison to catch."""
    return "\n".join(AGE.sub(r"\1   <age>", line) for line in text.split("\n"))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("parity")
    srv = start_server(f"sqlite:{tmp / 'cp.db'}", tmp / "server.log")
    yield srv
    assert srv.stop() == 0, srv.log()


@pytest.fixture
def files_url() -> Iterator[str]:
    yield from serve_files()


def test_apply_a_directory_with_comma_separated_vars(server: Server, tmp_path: Path) -> None:
    """kumactl's `-v a=b,c=d` (pflag StringToString) and kubectl's `-f DIR` (its *.yaml/*.yml, in order)."""
    out = ok("apply", "-f", str(templated_dir(tmp_path)), "-v", "mesh=from-dir,backend=jaeger",
             "-v", "collector.host=zipkin.local", url=server.url)
    assert out == 'Mesh "from-dir" created\nTrafficTrace "from-dir/all" created\n'
    _, trace = server.get("/meshes/from-dir/traffic-traces/all")
    assert trace["conf"] == {"backend": "jaeger"}
    _, mesh = server.get("/meshes/from-dir")
    assert mesh["tracing"]["backends"][0]["conf"] == {"url": "http://zipkin.local:9411/api/v2/spans"}
    assert server.get("/meshes/never-applied")[0] == 404


def test_an_invalid_file_in_a_directory_is_named_and_nothing_is_applied(server: Server, tmp_path: Path) -> None:
    directory = tmp_path / "broken"
    directory.mkdir()
    (directory / "a.yaml").write_text("type: Mesh\nname: dir-ok\n")
    (directory / "b.yaml").write_text("type: Mesh\nname: Bad_Name\n")
    result = run_cli("apply", "-f", str(directory), url=server.url)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (f'Error: {directory / "b.yaml"}: document 1 (Mesh "Bad_Name") is not valid:\n'
                             "  name: invalid characters. Valid characters are numbers, lowercase latin letters "
                             "and '-', '_' symbols.\nnothing was applied\n")
    assert server.get("/meshes/dir-ok")[0] == 404
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run_cli("apply", "-f", str(empty), url=server.url)
    assert (result.returncode, result.stderr) == (1, f"Error: {empty}: no *.yaml or *.yml files in this directory\n")


def test_apply_from_a_url(server: Server, files_url: str) -> None:
    assert ok("apply", "-f", f"{files_url}/mesh.yaml", url=server.url) == 'Mesh "from-url" created\n'
    cases = [
        (f"{files_url}/missing.yaml", f"Error: {files_url}/missing.yaml: the server answered HTTP 404 Not Found\n"),
        (f"{files_url}/huge.yaml", f"Error: {files_url}/huge.yaml: input is larger than 8388608 bytes\n"),
        ("http://127.0.0.1:1/x.yaml", ("Error: http://127.0.0.1:1/x.yaml: cannot fetch it: [Errno 111] "
                                      "Connection refused\n")),
    ]
    for source, stderr in cases:
        result = run_cli("apply", "-f", source, url=server.url)
        assert (result.returncode, result.stdout, result.stderr) == (1, "", stderr)


# get tables -----------------------------------------------------------------------------------------------


def test_get_dataplanes_table_and_pagination_footer(server: Server) -> None:
    """kumactl's columns (TAGS with every inbound's values, ADDRESS) and its footer: a blank line, then the
    offset of the next page."""
    put(server, "/meshes/tables", {"type": "Mesh", "name": "tables"})
    inbound = [{"port": 8080, "servicePort": 80, "tags": {"kuma.io/service": "mobile", "version": "v1"}},
               {"port": 8090, "servicePort": 90, "tags": {"kuma.io/service": "metrics", "version": "v1"}}]
    put(server, "/meshes/tables/dataplanes/experiment", {"networking": {"address": "127.0.0.1", "inbound": inbound}})
    put(server, "/meshes/tables/dataplanes/example", {"networking": {"address": "127.0.0.2", "inbound": [
        {"port": 8080, "servicePort": 80, "tags": {"kuma.io/service": "web", "version": "v2"}}]}})
    listed = ok("get", "dataplanes", "-m", "tables", url=server.url)
    assert normalise_age(listed) == (
        "MESH     NAME         TAGS                                        ADDRESS     AGE\n"
        "tables   example      kuma.io/service=web version=v2              127.0.0.2   <age>\n"
        "tables   experiment   kuma.io/service=metrics,mobile version=v1   127.0.0.1   <age>\n")
    paged = ok("get", "dataplanes", "-m", "tables", "--size", "1", url=server.url)
    assert normalise_age(paged) == (
        "MESH     NAME      TAGS                             ADDRESS     AGE\n"
        "tables   example   kuma.io/service=web version=v2   127.0.0.2   <age>\n"
        "\n"
        "Rerun command with --offset=1 argument to retrieve more resources\n")
    last = ok("get", "dataplanes", "-m", "tables", "--size", "1", "--offset", "1", url=server.url)
    assert normalise_age(last) == (
        "MESH     NAME         TAGS                                        ADDRESS     AGE\n"
        "tables   experiment   kuma.io/service=metrics,mobile version=v1   127.0.0.1   <age>\n")


# labels ---------------------------------------------------------------------------------------------------


def test_labels_round_trip_through_apply_get_export_and_import(server: Server, tmp_path: Path) -> None:
    text = ("type: Mesh\nname: labelled\n---\ntype: TrafficTrace\nmesh: labelled\nname: tt\n"
            "labels:\n  team: core\nselectors:\n- match:\n    kuma.io/service: '*'\n")
    assert ok("apply", "-f", "-", url=server.url, stdin=text) == (
        'Mesh "labelled" created\nTrafficTrace "labelled/tt" created\n')
    shown = yaml.safe_load(ok("get", "traffic-trace", "tt", "-m", "labelled", "-o", "yaml", url=server.url))
    assert list(shown)[3:6] == ["creationTime", "modificationTime", "labels"]
    assert shown["labels"] == {"kuma.io/mesh": "labelled", "team": "core"}
    relabelled = text.replace("team: core", "team: edge")
    assert ok("apply", "-f", "-", url=server.url, stdin=relabelled) == (
        'Mesh "labelled" unchanged\nTrafficTrace "labelled/tt" updated\n')
    exported = ok("export", url=server.url)
    assert "  team: edge\n" in exported
    store = f"sqlite:{tmp_path / 'copy.db'}"
    ok("import", "-f", "-", "--store", store, url=None, stdin=exported)
    again = yaml.safe_load_all(ok("export", "--store", store, url=None))
    trace = next(d for d in again if d["type"] == "TrafficTrace" and d["name"] == "tt")
    assert trace["labels"] == {"kuma.io/mesh": "labelled", "team": "edge"}


def test_import_prints_apply_words_through_a_store_and_through_the_api(server: Server, tmp_path: Path) -> None:
    text = ("type: Mesh\nname: words\n---\ntype: TrafficTrace\nmesh: words\nname: tt\n"
            "selectors:\n- match:\n    kuma.io/service: '*'\n")
    store = f"sqlite:{tmp_path / 'words.db'}"
    first = 'Mesh "words" created\nTrafficTrace "words/tt" created\n'
    unchanged = 'Mesh "words" unchanged\nTrafficTrace "words/tt" unchanged\n'
    updated = 'Mesh "words" unchanged\nTrafficTrace "words/tt" updated\n'
    changed = text.replace("'*'", "web")
    for target in ({"url": server.url}, {"url": None, "store": store}):
        args = ("--store", str(target["store"])) if "store" in target else ()
        url = target["url"]
        assert ok("import", "-f", "-", *args, url=url, stdin=text) == first
        assert ok("import", "-f", "-", *args, url=url, stdin=text) == unchanged
        assert ok("import", "-f", "-", *args, url=url, stdin=changed) == updated


# inspect --------------------------------------------------------------------------------------------------


def test_inspect_meshes(tmp_path: Path) -> None:
    server = start_server("memory", tmp_path / "server.log")
    try:
        inspect_meshes(server)
    finally:
        assert server.stop() == 0, server.log()


def inspect_meshes(server: Server) -> None:
    put(server, "/meshes/empty", {"type": "Mesh", "name": "empty"})
    put(server, "/meshes/insp", {"type": "Mesh", "name": "insp", "tracing": {"backends": [
        {"name": "jaeger", "type": "zipkin", "url": "http://jaeger:9411/api/v2/spans"}]}})
    put(server, "/meshes/insp/traffic-traces/t1", {"selectors": [{"match": {"kuma.io/service": "*"}}]})
    put(server, "/meshes/insp/dataplanes/dp-1", {"networking": {"address": "127.0.0.1", "inbound": [
        {"port": 8080, "tags": {"kuma.io/service": "web"}}]}})
    assert ok("inspect", "meshes", url=server.url) == (
        "MESH    DATAPLANES   TRAFFIC TRACES   MESH TRACES   TRACING\n"
        "empty   0/0          0                0             off\n"
        "insp    0/1          1                0             zipkin/jaeger\n")
    body = json.loads(ok("inspect", "meshes", "-o", "json", url=server.url))
    assert next(i for i in body["items"] if i["name"] == "insp")["policies"] == {"TrafficTrace": {"total": 1}}


def test_inspect_a_policy_lists_its_dataplanes_or_says_there_are_none(server: Server) -> None:
    put(server, "/meshes/pol", {"type": "Mesh", "name": "pol"})
    put(server, "/meshes/pol/traffic-traces/none", {"selectors": [{"match": {"kuma.io/service": "nothing"}}]})
    put(server, "/meshes/pol/traffic-traces/web", {"selectors": [{"match": {"kuma.io/service": "web"}}]})
    put(server, "/meshes/pol/dataplanes/web-1", {"networking": {"address": "127.0.0.1", "inbound": [
        {"port": 8080, "tags": {"kuma.io/service": "web"}}]}})
    assert ok("inspect", "traffic-trace", "none", "-m", "pol", url=server.url) == (
        "Affected data plane proxies:\n\nno dataplanes\n")
    deadline = time.monotonic() + DEADLINE_S  # the reconciler decides shortly after the write
    while server.get("/meshes/pol/traffic-traces/web/dataplanes")[1].get("total") != 1:
        assert time.monotonic() < deadline, "the reconciler never decided on web-1"
        time.sleep(0.02)
    assert ok("inspect", "traffic-trace", "web", "-m", "pol", url=server.url) == (
        "Affected data plane proxies:\n\n  web-1\n")
