"""The console script against the hardened API (issue 11 §3): allowed hosts, the CLI through the browser
guard, and the upgrade from the revocation file. Real `controlplane run` processes, real CLI commands.
"""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request
from datetime import timedelta
from pathlib import Path
from typing import Any

import jwt
import yaml
from cli_helpers import controlplane_script, free_port, run_cli, start_server

from controlplane.auth.keys import load_or_create_signing_key
from controlplane.auth.revocation import REVOCATION_FILE
from controlplane.auth.tokens import Tokens

MESH_YAML = "type: Mesh\nname: default\n"
DATAPLANE_YAML = """\
type: Dataplane
mesh: default
name: web-1
networking:
  address: 127.0.0.1
  inbound:
  - port: 20001
    servicePort: 8081
    tags: {kuma.io/service: web, kuma.io/protocol: http}
"""


def with_host(url: str, host: str, method: str = "GET", body: object = None,
              token: str | None = None) -> tuple[int, Any]:
    headers = {"Host": host, "Content-Type": "application/json", **({"Authorization": f"Bearer {token}"}
                                                                    if token else {})}
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def ok(*args: str, url: str, stdin: str | None = None) -> str:
    result = run_cli(*args, url=url, stdin=stdin)
    assert result.returncode == 0, f"{args}: {result.stderr}"
    return result.stdout


def test_every_api_command_passes_the_browser_guard(tmp_path: Path) -> None:
    """apply, get, inspect, export, delete, import, generate and revoke: urllib sends the URL's Host and JSON
    bodies, so the CLI is never mistaken for a browser, under 127.0.0.1 or localhost."""
    server = start_server(f"sqlite:{tmp_path / 'cp.db'}", tmp_path / "cp.log")
    try:
        for url in (server.url, server.url.replace("127.0.0.1", "localhost")):
            ok("apply", "-f", "-", url=url, stdin=MESH_YAML + "---\n" + DATAPLANE_YAML)
            assert yaml.safe_load(ok("get", "dataplanes", "-o", "yaml", url=url))["total"] == 1
            ok("inspect", "dataplane", "web-1", url=url)
            exported = ok("export", url=url)
            ok("delete", "mesh", "default", url=url)
            ok("import", "-f", "-", url=url, stdin=exported)
            token_file = tmp_path / "web-1.token"
            ok("generate", "dataplane-token", "--mesh", "default", "--name", "web-1", "-o", str(token_file), url=url)
            assert ok("revoke", "dataplane-token", "--token-file", str(token_file), url=url).startswith("revoked")
            ok("delete", "mesh", "default", url=url)
    finally:
        assert server.stop() == 0, server.log()


def test_allowed_hosts_flag(tmp_path: Path) -> None:
    server = start_server("memory", tmp_path / "cp.log", "--api-address", "0.0.0.0",
                          "--api-allowed-hosts", "cp.internal,cp2.internal", "--api-allowed-hosts", "cp3.internal")
    port = server.url.rsplit(":", 1)[1]
    try:
        for host in ("cp.internal", f"cp2.internal:{port}", "CP3.internal", "10.11.12.13", "localhost"):
            assert with_host(server.url + "/meshes", host)[0] == 200, host
        assert with_host(server.url + "/meshes/default", f"cp.internal:{port}", "PUT", {"type": "Mesh",
                                                                                       "name": "default"})[0] == 201
        status, body = with_host(server.url + "/meshes", f"evil.example:{port}")
        assert (status, body["title"]) == (421, "Misdirected Request")
        assert "cp.internal, cp2.internal, cp3.internal" in body["details"], body
    finally:
        assert server.stop() == 0, server.log()


def test_a_bad_allowed_host_is_one_line_and_nothing_is_written(tmp_path: Path) -> None:
    result = subprocess.run(
        [controlplane_script(), "run", "--store", "sqlite:", "--api-port", str(free_port()), "--xds-port", "0",
         "--api-allowed-hosts", "http://cp.internal"],
        capture_output=True, text=True, timeout=30, check=False, stdin=subprocess.DEVNULL, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr == ("Error: --api-allowed-hosts: 'http://cp.internal' is not a host name or IP address "
                             "(give no scheme, port or path; ports are not compared)\n"), result.stderr
    assert list(tmp_path.iterdir()) == []  # no signing key, no database


def test_the_old_revocation_file_is_imported_once_and_stays_in_force_without_it(tmp_path: Path) -> None:
    """An upgrade: revocations kept by the previous version in the file beside the signing key."""
    key_file = tmp_path / "controlplane-signing-key.pem"
    tokens = Tokens(load_or_create_signing_key(key_file))
    admin = tokens.issue_admin(timedelta(hours=1))
    jti = jwt.decode(admin, options={"verify_signature": False})["jti"]
    (tmp_path / REVOCATION_FILE).write_text(f"{jti}\n{'e' * 32}\n{'f' * 9}")  # the last line torn
    args = ("--no-api-localhost-is-admin", "--signing-key-file", str(key_file))
    mesh = {"type": "Mesh", "name": "default"}
    for start in (1, 2):
        log = tmp_path / f"cp-{start}.log"
        server = start_server(f"sqlite:{tmp_path / 'cp.db'}", log, *args)
        try:
            status, body = with_host(server.url + "/meshes/default", "127.0.0.1", "PUT", mesh, token=admin)
            assert (status, body["title"]) == (401, "Unauthenticated") and "revoked" in body["details"], body
        finally:
            assert server.stop() == 0, server.log()
        imported = [line for line in log.read_text().splitlines() if "legacy_revocations_imported" in line]
        if start == 1:
            assert len(imported) == 1 and "imported=2" in imported[0] and "skipped=1" in imported[0], imported
            (tmp_path / REVOCATION_FILE).unlink()  # deleting it no longer makes the token valid again
        else:
            assert imported == []
