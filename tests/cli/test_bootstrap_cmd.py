"""`controlplane bootstrap`: the printed YAML is what Envoy accepts, for SotW and delta, and names the service.

Run against a real `controlplane run` process, like the other CLI tests; Envoy's own `--mode validate` is the
judge of the output, so a quoting mistake (Envoy's YAML reads a plain `y` as a boolean) fails here.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
import yaml
from cli_helpers import Server, http_json, run_cli, start_server

from controlplane.cli.bootstrap import parse_cp_address, render_bootstrap_yaml
from controlplane.dataplane.envoy import find_envoy

VALIDATE_TIMEOUT_S = 60.0


def _dataplane(name: str, service: str) -> dict[str, object]:
    return {"type": "Dataplane", "mesh": "default", "name": name, "networking": {
        "address": "127.0.0.1",
        "inbound": [{"port": 20001, "servicePort": 8081, "tags": {"kuma.io/service": service}},
                    {"port": 20002, "servicePort": 8082, "tags": {"kuma.io/service": "zz-second"}}],
    }}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server("memory", tmp_path_factory.mktemp("bootstrap") / "server.log")
    try:
        assert http_json("PUT", f"{srv.url}/meshes/default", {"type": "Mesh", "name": "default"})[0] == 201
        for name, service in (("backend-1", "backend"), ("y", "y")):
            status, body = http_json("PUT", f"{srv.url}/meshes/default/dataplanes/{name}", _dataplane(name, service))
            assert status == 201, body
        yield srv
    finally:
        assert srv.stop() == 0, srv.log()


def _envoy_validate(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([find_envoy(), "--mode", "validate", "-c", str(config), "--disable-hot-restart"],
                          capture_output=True, text=True, timeout=VALIDATE_TIMEOUT_S, check=False)


@pytest.mark.e2e
@pytest.mark.parametrize("delta", [False, True], ids=["sotw", "delta"])
def test_output_passes_envoy_validate(server: Server, tmp_path: Path, delta: bool) -> None:
    result = run_cli("bootstrap", "--mesh", "default", "--name", "backend-1", "--cp-address", "localhost:5678",
                     *(["--delta"] if delta else []), url=server.url)
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    assert config["node"] == {"id": "default.backend-1", "cluster": "backend"}  # first service alphabetically
    ads = config["dynamic_resources"]["ads_config"]
    assert (ads["api_type"], ads["set_node_on_first_message_only"]) == ("DELTA_GRPC" if delta else "GRPC", True)
    address = config["static_resources"]["clusters"][0]["load_assignment"]["endpoints"][0]["lb_endpoints"][0]
    assert address["endpoint"]["address"]["socket_address"] == {"address": "localhost", "port_value": 5678}
    assert config["admin"]["address"]["socket_address"]["address"] == "127.0.0.1"
    path = tmp_path / "bootstrap.yaml"
    path.write_text(result.stdout)
    validated = _envoy_validate(path)
    assert validated.returncode == 0, validated.stdout + validated.stderr


@pytest.mark.e2e
def test_output_file_with_yaml_boolean_lookalikes_passes_envoy_validate(server: Server, tmp_path: Path) -> None:
    """Node id `default.y` and service `y`: plain `y` would be a boolean to Envoy's YAML parser."""
    path = tmp_path / "out" / "envoy.yaml"
    path.parent.mkdir()
    result = run_cli("bootstrap", "-m", "default", "--name", "y", "--admin-port", "9901", "-o", str(path),
                     url=server.url)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    text = path.read_text()
    assert 'cluster: "y"' in text
    assert yaml.safe_load(text)["admin"]["address"]["socket_address"]["port_value"] == 9901
    validated = _envoy_validate(path)
    assert validated.returncode == 0, validated.stdout + validated.stderr


def test_stats_flush_interval_is_envoys_and_bounded(server: Server) -> None:
    """How often Envoy reports to the stats sink: Envoy's 5 s by default, the option's value, or refused."""
    flushes = []
    for extra in ((), ("--stats-flush-interval", "15")):
        result = run_cli("bootstrap", "-m", "default", "--name", "backend-1", *extra, url=server.url)
        assert result.returncode == 0, result.stderr
        flushes.append(yaml.safe_load(result.stdout)["stats_flush_interval"])
    assert flushes == ["5s", "15s"]
    refused = run_cli("bootstrap", "-m", "default", "--name", "backend-1", "--stats-flush-interval", "0.5",
                      url=server.url)
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr.splitlines()[-1] == ("Error: Invalid value for '--stats-flush-interval': 0.5 is not in the "
                                               "range 1.0<=x<=300.0.")


def test_missing_dataplane_is_a_clear_error(server: Server) -> None:
    result = run_cli("bootstrap", "--mesh", "default", "--name", "nope", url=server.url)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith('Error: there is no Dataplane "nope" in mesh "default": apply it first')


def test_bad_cp_address_names_the_option(server: Server) -> None:
    result = run_cli("bootstrap", "--mesh", "default", "--name", "backend-1", "--cp-address", "nohost",
                     url=server.url)
    assert result.returncode == 2
    assert "--cp-address" in result.stderr and "HOST:PORT" in result.stderr


@pytest.mark.parametrize(("value", "expected"), [
    ("127.0.0.1:5678", ("127.0.0.1", 5678)),
    ("control-plane:15678", ("control-plane", 15678)),
    ("[::1]:5678", ("::1", 5678)),
], ids=["ip", "hostname", "ipv6"])
def test_parse_cp_address(value: str, expected: tuple[str, int]) -> None:
    assert parse_cp_address(value) == expected


@pytest.mark.parametrize(("value", "problem"), [
    ("http://127.0.0.1:5678", "give the address without a scheme or path"),
    ("127.0.0.1:5678/ads", "the port must be a number in 1-65535"),
    ("::1:5678", "write an IPv6 address in brackets, e.g. [::1]:PORT"),
    ("[1.2.3.4]:5678", "brackets are for IPv6 addresses"),
    ("[cp]:5678", "'cp' is not an IPv6 address"),
    ("cp..local:5678", "'cp..local' is not a host name"),
    ("cp:0", "the port must be a number in 1-65535"),
    (":5678", "no host"),
], ids=["url", "path", "ipv6-unbracketed", "ipv4-bracketed", "name-bracketed", "empty-label", "port-0", "no-host"])
def test_parse_cp_address_refuses_what_envoy_cannot_reach(value: str, problem: str) -> None:
    """The host goes verbatim into the ads_cluster: `http://127.0.0.1` there is a cluster Envoy never reaches."""
    with pytest.raises(click.BadParameter) as raised:
        parse_cp_address(value)
    assert raised.value.format_message() == (f"Invalid value for --cp-address: expected HOST:PORT with a port in "
                                             f"1-65535 (e.g. 127.0.0.1:5678), got {value!r}: {problem}")


def test_yaml_quotes_every_string_value() -> None:
    text = render_bootstrap_yaml({"node": {"id": "n", "cluster": "on"}, "list": ["off", 1, True], "@type": "x"})
    assert text == 'node:\n  id: "n"\n  cluster: "on"\nlist:\n- "off"\n- 1\n- true\n\'@type\': "x"\n'
    assert yaml.safe_load(text) == {"node": {"id": "n", "cluster": "on"}, "list": ["off", 1, True], "@type": "x"}
