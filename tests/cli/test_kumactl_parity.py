"""kumactl habits with `controlplane` (issue 17), through the real console script against real servers.

Outputs are compared whole, as kumactl's golden files are (app/kumactl/cmd/*/testdata/*.golden.txt); the only
thing normalised is the AGE cell (the last column, so no other column's width depends on it), whose rules
have a unit test of their own (tests/unit/cli/test_kumactl_output.py).
"""

from __future__ import annotations

import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest
import yaml
from cli_helpers import Server, http_json, run_cli, start_server

from controlplane import __version__

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


@pytest.fixture(scope="module")
def second(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Another control plane, to switch between."""
    tmp = tmp_path_factory.mktemp("parity-second")
    srv = start_server("memory", tmp / "server.log")
    yield srv
    assert srv.stop() == 0, srv.log()


def ok(*args: str, url: str | None, stdin: str | None = None, env: dict[str, str] | None = None) -> str:
    result = run_cli(*args, url=url, stdin=stdin, env=env)
    assert result.returncode == 0, f"controlplane {' '.join(args)}: {result.stderr}"
    return result.stdout


def put(server: Server, path: str, body: dict[str, object]) -> None:
    status, reply = http_json("PUT", server.url + path, body)
    assert status in (200, 201), reply


# apply: directories, URLs, variables ---------------------------------------------------------------------


def templated_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "resources"
    directory.mkdir()
    (directory / "01-mesh.yaml").write_text("type: Mesh\nname: {{ mesh }}\ntracing:\n  backends:\n"
                                            "  - name: {{ backend }}\n    type: zipkin\n"
                                            "    url: http://{{ collector.host }}:9411/api/v2/spans\n")
    (directory / "02-trace.yml").write_text("type: TrafficTrace\nmesh: {{ mesh }}\nname: all\n"
                                            "selectors:\n- match:\n    kuma.io/service: '*'\nbackend: {{ backend }}\n")
    (directory / "README.md").write_text("not a resource")
    (directory / "nested").mkdir()
    (directory / "nested" / "03-ignored.yaml").write_text("type: Mesh\nname: never-applied\n")
    return directory


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


class _Files(http.server.BaseHTTPRequestHandler):
    """Serves `/mesh.yaml` and `/huge.yaml`; 404 for anything else."""

    def do_GET(self) -> None:
        bodies = {"/mesh.yaml": b"type: Mesh\nname: from-url\n",
                  "/huge.yaml": b"# " + b"x" * (8 * 1024 * 1024) + b"\n"}
        body = bodies.get(self.path)
        self.send_response(200 if body is not None else 404)
        self.send_header("Content-Length", str(len(body or b"")))
        self.end_headers()
        self.wfile.write(body or b"")

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def files_url() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Files)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


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
        "MESH    DATAPLANES   TRAFFIC TRACES   TRACING\n"
        "empty   0/0          0                off\n"
        "insp    0/1          1                zipkin/jaeger\n")
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


# contexts -------------------------------------------------------------------------------------------------


def test_control_planes_add_list_switch_remove(server: Server, second: Server, tmp_path: Path) -> None:
    """kumactl's words and table; every client command uses the active control plane; --api-url and
    CONTROLPLANE_API_URL still win; the file is private."""
    config = tmp_path / "cli" / "config.yaml"
    config.parent.mkdir()
    env = {"CONTROLPLANE_CONFIG": str(config)}
    put(second, "/meshes/only-on-second", {"type": "Mesh", "name": "only-on-second"})

    assert ok("config", "control-planes", "add", "--name", "first", "--address", server.url, url=None, env=env) == (
        'added Control Plane "first"\nswitched active Control Plane to "first"\n')
    assert ok("config", "control-planes", "add", "--name", "second", "--address", second.url, url=None,
              env=env) == 'added Control Plane "second"\nswitched active Control Plane to "second"\n'
    assert config.stat().st_mode & 0o777 == 0o600
    assert ok("config", "control-planes", "list", url=None, env=env) == (
        f"ACTIVE   NAME     ADDRESS\n"
        f"         local    http://127.0.0.1:5681\n"
        f"         first    {server.url}\n"
        f"*        second   {second.url}\n")
    assert "only-on-second" in ok("get", "meshes", url=None, env=env)
    assert ok("config", "control-planes", "switch", "--name", "first", url=None, env=env) == (
        'switched active Control Plane to "first"\n')
    assert "only-on-second" not in ok("get", "meshes", url=None, env=env)
    assert "only-on-second" in ok("get", "meshes", "--api-url", second.url, url=None, env=env)
    assert "only-on-second" in ok("--api-url", second.url, "get", "meshes", url=None, env=env)
    assert "only-on-second" in ok("get", "meshes", url=second.url, env=env)

    refused = run_cli("config", "control-planes", "add", "--name", "first", "--address", second.url, url=None,
                      env=env)
    assert (refused.returncode, refused.stderr) == (1, ('Error: Control Plane with name "first" already exists. '
                                                       "Use --overwrite to replace an existing one.\n"))
    assert ok("config", "control-planes", "remove", "--name", "first", url=None, env=env) == (
        'removed Control Plane "first"\nswitched active Control Plane to "local"\n')
    unknown = run_cli("config", "control-planes", "switch", "--name", "first", url=None, env=env)
    assert (unknown.returncode, unknown.stderr) == (1, 'Error: there is no Control Plane with name "first"\n')


def test_add_checks_the_address_and_writes_nothing_when_it_is_not_a_control_plane(
        files_url: str, tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    env = {"CONTROLPLANE_CONFIG": str(config)}
    result = run_cli("config", "control-planes", "add", "--name", "x", "--address", files_url, url=None, env=env)
    assert result.returncode == 1
    assert result.stderr.startswith(f"Error: could not connect to the Control Plane API Server: HTTP 404 Not Found "
                                    f"from GET {files_url}/")
    assert not config.exists()
    assert ok("config", "control-planes", "add", "--name", "x", "--address", files_url, "--skip-check", url=None,
              env=env).startswith('added Control Plane "x"')


class _Recorder(http.server.BaseHTTPRequestHandler):
    """A control plane's index and an empty mesh list; remembers the Authorization header of each request."""

    seen: ClassVar[list[str | None]] = []

    def do_GET(self) -> None:
        type(self).seen.append(self.headers.get("Authorization"))
        document = {"product": "controlplane", "version": __version__} if self.path == "/" else {
            "total": 0, "items": [], "next": None}
        body = json.dumps(document).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_a_token_from_the_context_is_sent_only_to_its_control_plane(tmp_path: Path) -> None:
    """kumactl's `--auth-type tokens --auth-conf token=...` is stored (mode 0600), masked by `config view`,
    sent to that control plane, and not sent when --api-url or the environment points elsewhere."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    recorder = f"http://127.0.0.1:{httpd.server_address[1]}"
    alias = f"http://localhost:{httpd.server_address[1]}"  # the same server under a name the context lacks
    config = tmp_path / "config.yaml"
    env = {"CONTROLPLANE_CONFIG": str(config)}
    try:
        ok("config", "control-planes", "add", "--name", "tok", "--address", recorder, "--auth-type", "tokens",
           "--auth-conf", "token=secret-token", url=None, env=env)
        assert "secret-token" in config.read_text() and config.stat().st_mode & 0o777 == 0o600
        viewed = ok("config", "view", url=None, env=env)
        assert "secret-token" not in viewed and "token: '*****'" in viewed
        _Recorder.seen.clear()
        ok("get", "meshes", url=None, env=env)
        ok("get", "meshes", "--api-url", alias, url=None, env=env)
        ok("get", "meshes", url=alias, env=env)
        assert _Recorder.seen == ["Bearer secret-token", None, None]
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_client_flags_are_accepted_before_and_after_the_subcommand(server: Server) -> None:
    put(server, "/meshes/flags", {"type": "Mesh", "name": "flags"})
    put(server, "/meshes/flags/dataplanes/web-1", {"networking": {"address": "127.0.0.1", "inbound": [
        {"port": 8080, "tags": {"kuma.io/service": "web"}}]}})
    for args in (["inspect", "dataplane", "web-1", "-m", "flags", "--api-url", server.url],
                 ["--api-url", server.url, "inspect", "dataplane", "web-1", "-m", "flags"],
                 ["inspect", "--api-url", server.url, "dataplane", "web-1", "-m", "flags"],
                 ["inspect", "--api-url", "http://127.0.0.1:1", "dataplane", "web-1", "-m", "flags", "--api-url",
                  server.url]):
        assert ok(*args, url=None).startswith("Dataplane flags/web-1\n"), args


# version, completion, help --------------------------------------------------------------------------------


def test_version_prints_client_and_server(server: Server) -> None:
    result = run_cli("version", url=server.url)
    assert (result.returncode, result.stdout, result.stderr) == (
        0, f"Client: controlplane {__version__}\nServer: controlplane {__version__}\n", "")


class _OtherVersion(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"hostname": "h", "product": "controlplane", "version": "9.9.9"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_version_warns_when_the_server_differs() -> None:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _OtherVersion)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        result = run_cli("version", url=f"http://127.0.0.1:{httpd.server_address[1]}")
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert (result.returncode, result.stdout, result.stderr) == (
        0, f"Client: controlplane {__version__}\nServer: controlplane 9.9.9\n",
        (f"WARNING: You are using controlplane version {__version__} for controlplane, but the server returned "
        "version: 9.9.9 for controlplane\n"))


def test_bash_completion_completes_a_resource_name_in_a_real_bash(server: Server, tmp_path: Path) -> None:
    """The printed script, sourced in bash, completes subcommands, types and (from the API) names."""
    put(server, "/meshes/complete", {"type": "Mesh", "name": "complete"})
    put(server, "/meshes/complete/dataplanes/backend-1", {"networking": {"address": "127.0.0.1", "inbound": [
        {"port": 8081, "tags": {"kuma.io/service": "backend"}}]}})
    put(server, "/meshes/complete/dataplanes/web-1", {"networking": {"address": "127.0.0.1", "inbound": [
        {"port": 8080, "tags": {"kuma.io/service": "web"}}]}})
    script = tmp_path / "completion.bash"
    script.write_text(ok("completion", "bash", url=None))
    probe = tmp_path / "probe.bash"
    probe.write_text(f"""source {script}
complete_words() {{
  COMP_WORDS=("$@"); COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 )); COMPREPLY=()
  _controlplane_completion controlplane
  echo "${{COMPREPLY[*]}}"
}}
complete_words controlplane vers
complete_words controlplane get ''
complete_words controlplane get -m complete dataplane ''
complete_words controlplane get --mesh complete dataplane w
complete_words controlplane inspect dataplane -m complete b
complete_words controlplane --api-url http://127.0.0.1:1 get mesh ''
""")
    bash = shutil.which("bash")
    assert bash is not None
    environ = {**os.environ, "CONTROLPLANE_API_URL": server.url,
               "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run([bash, "--norc", str(probe)], capture_output=True, text=True, env=environ, timeout=60,
                            check=False)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.splitlines() == [
        "version",
        "meshes traffic-traces dataplanes mesh traffic-trace dataplane",
        "backend-1 web-1",
        "web-1",
        "backend-1",
        "",  # the command line names an API that is not there: nothing, and no error in the prompt
    ]


def test_no_arguments_prints_help_and_exits_0() -> None:
    result = run_cli(url=None)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.startswith("Usage: controlplane [OPTIONS] [COMMAND] [ARGS]...\n")
    assert "  config " in result.stdout and "  version " in result.stdout and "  completion " in result.stdout


def test_a_kumactl_users_script_runs_with_controlplane_in_its_place(server: Server, second: Server,
                                                                     tmp_path: Path) -> None:
    """Issue 17's "done means": kumactl commands an operator scripts, `kumactl` replaced by `controlplane`."""
    directory = templated_dir(tmp_path)
    script = tmp_path / "kumactl-user.sh"
    script.write_text(f"""set -euo pipefail
kumactl() {{ controlplane "$@"; }}
kumactl config control-planes add --name prod --address {server.url}
kumactl config control-planes add --name staging --address {second.url}
kumactl config control-planes switch --name prod
kumactl apply -f {directory} -v mesh=scripted,backend=zipkin -v collector.host=zipkin
kumactl get meshes
kumactl get traffic-traces --mesh scripted
kumactl inspect meshes > /dev/null
kumactl config control-planes switch --name staging
echo "== staging"
kumactl get meshes
""")
    environ = {**os.environ, "CONTROLPLANE_CONFIG": str(tmp_path / "config.yaml"),
               "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    environ.pop("CONTROLPLANE_API_URL", None)
    result = subprocess.run(["bash", "--norc", str(script)], capture_output=True, text=True, env=environ,
                            timeout=120, check=False)
    assert (result.returncode, result.stderr) == (0, "")
    out = result.stdout.splitlines()
    assert out[:8] == ['added Control Plane "prod"', 'switched active Control Plane to "prod"',
                       'added Control Plane "staging"', 'switched active Control Plane to "staging"',
                       'switched active Control Plane to "prod"', 'Mesh "scripted" created',
                       'TrafficTrace "scripted/all" created', out[7]]
    on_prod, on_staging = "\n".join(out[7:]).split("== staging\n")
    assert re.search(r"^scripted +zipkin/zipkin +\d+[smhdy]$", on_prod, re.MULTILINE)
    assert re.search(r"^scripted +all +\d+[smhdy]$", on_prod, re.MULTILINE)
    assert on_staging.startswith("NAME   ") and "scripted" not in on_staging
