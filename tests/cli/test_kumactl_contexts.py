"""kumactl's contexts (`config control-planes ...`), client flags anywhere on the line, `version`, shell
completion in a real bash, help without arguments, and a kumactl user's whole script; through the real console
script against real servers. Outputs compared whole."""

from __future__ import annotations

import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest
from cli_helpers import Server, run_cli, start_server
from parity_helpers import ok, put, serve_files, templated_dir

from controlplane import __version__


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


@pytest.fixture
def files_url() -> Iterator[str]:
    yield from serve_files()


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
        "meshes traffic-traces meshtraces dataplanes mesh traffic-trace meshtrace dataplane",
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
