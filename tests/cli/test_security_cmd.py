"""Tokens, API authentication and TLS through the real console script (issue 7, items 4-6; issue 11 §3).

Two `controlplane run` processes share one signing key: A keeps the default (localhost is admin), B runs with
`--no-api-localhost-is-admin`, so from this test (on localhost) B needs a token for writes. Tokens come from A
through `controlplane generate`, and B accepts them because the key is the same. Revocations live in each
one's store (SQLite here: single-replica; replicas on PostgreSQL share theirs, tests/e2e/test_replicas.py).
"""

from __future__ import annotations

import sqlite3
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest
import yaml
from cli_helpers import Server, controlplane_script, http_json, run_cli, start_server
from tls_certs import Certs, make_certs

MESH = {"type": "Mesh", "name": "default"}
MESH_YAML = "type: Mesh\nname: default\n"


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Server, Path]]:
    directory = tmp_path_factory.mktemp("security")
    a = start_server(f"sqlite:{directory / 'a.db'}", directory / "a.log")
    key = directory / "controlplane-signing-key.pem"
    b = start_server(f"sqlite:{directory / 'b.db'}", directory / "b.log", "--no-api-localhost-is-admin",
                     "--signing-key-file", str(key))
    try:
        yield a, b, directory
    finally:
        assert b.stop() == 0, b.log()
        assert a.stop() == 0, a.log()


def generate(server: Server, *args: str) -> str:
    result = run_cli("generate", *args, url=server.url)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_signing_key_is_created_next_to_the_database_private(servers: tuple[Server, Server, Path]) -> None:
    _, _, directory = servers
    key = directory / "controlplane-signing-key.pem"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert key.read_text().startswith("-----BEGIN PRIVATE KEY-----")


def test_writes_need_a_token_when_localhost_is_not_admin(servers: tuple[Server, Server, Path], tmp_path: Path) -> None:
    a, b, _ = servers
    refused = run_cli("apply", "-f", "-", stdin=MESH_YAML, url=b.url)
    assert refused.returncode == 1
    assert "Unauthenticated" in refused.stderr and "--token" in refused.stderr, refused.stderr
    assert b.get("/meshes")[1]["total"] == 0
    # Reads stay open.
    assert run_cli("get", "meshes", url=b.url).returncode == 0

    admin = generate(a, "admin-token", "--valid-for", "1h")  # localhost is admin on A: no token needed
    assert jwt.decode(admin, options={"verify_signature": False})["sub"] == "admin"
    ok = run_cli("apply", "--token", admin, "-f", "-", stdin=MESH_YAML, url=b.url)
    assert ok.returncode == 0, ok.stderr
    deleted = run_cli("delete", "mesh", "default", url=b.url, env={"CONTROLPLANE_API_TOKEN": admin})
    assert deleted.returncode == 0, deleted.stderr
    token_file = tmp_path / "admin-token"
    token_file.write_text(admin + "\n")
    again = run_cli("apply", "--api-token-file", str(token_file), "-f", "-", stdin=MESH_YAML, url=b.url)
    assert again.returncode == 0, again.stderr


def test_dataplane_token_is_forbidden_for_writes_and_revocable(
    servers: tuple[Server, Server, Path], tmp_path: Path
) -> None:
    a, b, directory = servers
    token_file = tmp_path / "web-1.token"
    result = run_cli("generate", "dataplane-token", "--mesh", "default", "--name", "web-1", "--valid-for", "24h",
                     "-o", str(token_file), url=a.url)
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    token = token_file.read_text().strip()
    claims = jwt.decode(token, options={"verify_signature": False})
    assert (claims["sub"], claims["mesh"], claims["name"]) == ("dataplane", "default", "web-1")

    assert http_json("PUT", f"{b.url}/meshes/other", {**MESH, "name": "other"}, token=token)[0] == 403
    admin = generate(a, "admin-token", "--valid-for", "1h")
    wrong = run_cli("revoke", "admin-token", "--token-file", str(token_file), "--token", admin, url=b.url)
    assert wrong.returncode == 1
    assert wrong.stderr.strip().endswith("holds a dataplane token, not an admin token; use `controlplane revoke "
                                         "dataplane-token`"), wrong.stderr
    revoked = run_cli("revoke", "dataplane-token", "--token-file", str(token_file), "--token", admin, url=b.url)
    assert (revoked.returncode, revoked.stdout) == (0, f"revoked token {claims['jti']}\n"), revoked.stderr
    again = run_cli("revoke", "dataplane-token", "--token-id", claims["jti"], "--token", admin, url=b.url)
    assert (again.returncode, again.stdout) == (0, f"token {claims['jti']} was already revoked\n"), again.stderr
    status, body = http_json("PUT", f"{b.url}/meshes/other", {**MESH, "name": "other"}, token=token)
    assert (status, body["title"]) == (401, "Unauthenticated") and "revoked" in body["details"]
    # Stored in B's database, not in a file beside the key that could be deleted or torn.
    assert not (directory / "controlplane-revoked-tokens.txt").exists()
    with sqlite3.connect(directory / "b.db") as db:
        assert db.execute("SELECT token_id FROM token_revocations").fetchall() == [(claims["jti"],)]
    wrong_kind = run_cli("revoke", "dataplane-token", "--token-file", str(_write(tmp_path / "admin", admin)),
                         url=a.url)
    assert wrong_kind.returncode == 1 and "holds an admin token, not a dataplane token" in wrong_kind.stderr


def test_generate_validates_its_input(servers: tuple[Server, Server, Path]) -> None:
    a, _, _ = servers
    result = run_cli("generate", "dataplane-token", "--mesh", "default", "--name", "Web", url=a.url)
    assert result.returncode == 1
    assert "name: invalid characters" in result.stderr
    result = run_cli("generate", "admin-token", "--valid-for", "soon", url=a.url)
    assert result.returncode == 1 and "validFor: invalid duration 'soon'" in result.stderr
    result = run_cli("revoke", "dataplane-token", url=a.url)
    assert result.returncode == 2 and "exactly one of --token-id and --token-file" in result.stderr


def test_admin_token_hint_is_not_circular(servers: tuple[Server, Server, Path]) -> None:
    """With --no-api-localhost-is-admin, `generate admin-token` itself needs an admin: the hint must point at
    `run --admin-token-file`, not back at `generate admin-token` (issue 11 §5)."""
    _, b, _ = servers
    result = run_cli("generate", "admin-token", url=b.url)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        ("Error: Unauthenticated: issuing an admin token takes an admin token when the control plane runs with "
        "--no-api-localhost-is-admin or is not on this host"),
        ("hint: start `controlplane run --admin-token-file FILE` and pass --api-token-file FILE (or --token) to "
        "this command"),
    ], result.stderr
    other = run_cli("apply", "-f", "-", stdin=MESH_YAML, url=b.url)  # every other write: the generic hint
    assert "`controlplane run --admin-token-file FILE` writes one at start" in other.stderr, other.stderr


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Certs]]:
    directory = tmp_path_factory.mktemp("tls")
    certs = make_certs(directory / "certs")
    server = start_server("memory", directory / "server.log", "--tls-cert-file", str(certs.cert),
                          "--tls-key-file", str(certs.key), ca_file=certs.ca)
    try:
        yield server, certs
    finally:
        assert server.stop() == 0, server.log()


def test_cli_talks_to_the_https_api_with_the_ca(tls_server: tuple[Server, Certs]) -> None:
    server, certs = tls_server
    assert server.url.startswith("https://")
    applied = run_cli("apply", "--ca-cert-file", str(certs.ca), "-f", "-", stdin=MESH_YAML, url=server.url)
    assert applied.returncode == 0, applied.stderr
    listed = run_cli("get", "meshes", "-o", "yaml", url=server.url, env={"CONTROLPLANE_CA_CERT_FILE": str(certs.ca)})
    assert listed.returncode == 0, listed.stderr
    assert yaml.safe_load(listed.stdout)["total"] == 1


def test_cli_refuses_an_untrusted_https_api(tls_server: tuple[Server, Certs], tmp_path: Path) -> None:
    server, _ = tls_server
    result = run_cli("get", "meshes", url=server.url)
    assert result.returncode == 1
    assert "CERTIFICATE_VERIFY_FAILED" in result.stderr and "--ca-cert-file" in result.stderr, result.stderr
    other_ca = make_certs(tmp_path, ca_name="another CA").ca
    result = run_cli("get", "meshes", "--ca-cert-file", str(other_ca), url=server.url)
    assert result.returncode == 1 and "CERTIFICATE_VERIFY_FAILED" in result.stderr


def test_bootstrap_with_token_and_ca(tls_server: tuple[Server, Certs], tmp_path: Path) -> None:
    server, certs = tls_server
    dataplane = {"type": "Dataplane", "mesh": "default", "name": "web-1", "networking": {
        "address": "127.0.0.1", "inbound": [{"port": 20001, "servicePort": 8081, "tags": {"kuma.io/service": "web"}}]}}
    assert http_json("PUT", f"{server.url}/meshes/default", MESH, context=server.context)[0] in (200, 201)
    assert http_json("PUT", f"{server.url}/meshes/default/dataplanes/web-1", dataplane,
                     context=server.context)[0] == 201
    token_file = tmp_path / "token"
    token_file.write_text("header.payload.signature\n")
    out = tmp_path / "bootstrap.yaml"
    result = run_cli("bootstrap", "--mesh", "default", "--name", "web-1", "--cp-address", "localhost:5678",
                     "--token-file", str(token_file), "--ca-cert-file", str(certs.ca), "-o", str(out), url=server.url)
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    config = yaml.safe_load(out.read_text())
    grpc_service = config["dynamic_resources"]["ads_config"]["grpc_services"][0]
    assert grpc_service["initial_metadata"] == [{"key": "authorization", "value": "Bearer header.payload.signature"}]
    tls = config["static_resources"]["clusters"][0]["transport_socket"]["typed_config"]
    assert tls["sni"] == "localhost"
    assert tls["common_tls_context"]["validation_context"]["trusted_ca"] == {"inline_string": certs.ca.read_text()}


@pytest.mark.parametrize(("args", "message"), [
    (["--tls-cert-file", "{certs}/server.pem"], "TLS needs both --tls-cert-file and --tls-key-file"),
    (["--tls-cert-file", "{certs}/ca.pem", "--tls-key-file", "{certs}/ca.pem"], "cannot load the TLS certificate"),
    (["--signing-key-file", "{certs}/server.pem"], "not a PEM private key"),
], ids=["half-tls", "bad-tls", "bad-key"])
def test_run_refuses_bad_security_files(tmp_path: Path, args: list[str], message: str) -> None:
    make_certs(tmp_path)
    result = subprocess.run(
        [controlplane_script(), "run", "--store", "memory", "--api-port", "0", "--xds-port", "0",
         *[a.format(certs=tmp_path) for a in args]],
        capture_output=True, text=True, timeout=30, check=False, stdin=subprocess.DEVNULL)
    assert result.returncode == 1 and message in result.stderr, result.stderr


def test_token_files_are_made_private_even_when_they_already_exist(tmp_path: Path) -> None:
    """O_CREAT's 0600 only applies to a new file: an existing world-readable file must not keep its mode."""
    from controlplane.auth.keys import generate_signing_key
    from controlplane.auth.revocation import RevocationList
    from controlplane.auth.tokens import Tokens
    from controlplane.cli.security import write_admin_token
    from controlplane.cli.tokens import _emit

    admin_file, token_file = tmp_path / "admin-token", tmp_path / "dp-token"
    for path in (admin_file, token_file):
        path.write_text("old\n")
        path.chmod(0o644)
    write_admin_token(Tokens(generate_signing_key(), RevocationList(None)), admin_file)
    _emit("header.payload.signature", token_file)
    for path in (admin_file, token_file):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert token_file.read_text() == "header.payload.signature\n"


def _write(path: Path, text: str) -> Path:
    path.write_text(text + "\n")
    return path
