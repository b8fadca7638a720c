"""docker-compose.yml and the Dockerfile, checked without a Docker engine.

* `docker-compose config` (Debian's `docker-compose` package; `.ci/run` installs it) must accept the file.
* The wiring is cross-checked against the Dataplane files the sidecars run: IPs, app ports, outbound ports.
* The one-shot `setup` service's files and the sidecars' Dataplanes apply to a real control plane.
* The Dockerfile's install steps run for real in a fresh venv (e2e: it installs from the package index).
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import venv
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from controlplane.api.gui import load_gui
from controlplane.api.origin import AllowedHosts, parse_host
from controlplane.cli.apply import apply_all, decode_all
from controlplane.cli.client import ApiClient, ApiFailure, ApiSettings
from controlplane.cli.run import RunConfig, running
from controlplane.resources.codec import decode_resource
from controlplane.resources.generated import mesh_pb2

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.yml"
MESHTRACE_OVERRIDE = ROOT / "docker-compose.meshtrace.yml"
DOCKERFILE = ROOT / "Dockerfile"
INSTALL_TIMEOUT_S = 900


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def _option(command: list[str], name: str) -> str | None:
    return command[command.index(name) + 1] if name in command else None


def _sidecars(services: Mapping[str, Any]) -> dict[str, Any]:
    return {name: s for name, s in services.items() if s.get("command", [])[:3] == ["controlplane", "dataplane", "run"]}


def _compose_config(*files: Path) -> dict[str, Any]:
    """`docker-compose -f F1 -f F2 ... config`, parsed: the services as docker-compose merges them."""
    binary = shutil.which("docker-compose")
    if binary is None:
        reason = "docker-compose is not installed (apt-get install -y docker-compose; .ci/run installs it)"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"CI=true and {reason}", pytrace=False)
        pytest.skip(reason)
    args = [arg for path in files for arg in ("-f", str(path))]
    result = subprocess.run([binary, *args, "config"], capture_output=True, text=True, timeout=60, check=False,
                            cwd=ROOT)
    assert result.returncode == 0, result.stderr
    services: dict[str, Any] = yaml.safe_load(result.stdout)["services"]
    return services


def test_docker_compose_config_passes() -> None:
    services = _compose_config(COMPOSE)
    assert {"jaeger", "control-plane", "setup", "frontend", "backend", "db"} <= set(services)
    assert len(_sidecars(services)) == 3


def _assert_api_hosts_allowed(services: Mapping[str, Any]) -> None:
    """Every container's API URL names a host the control plane answers to (its Host check, README "Security")."""
    command = services["control-plane"]["command"]
    allowed = AllowedHosts.for_api(_option(command, "--api-address") or "",
                                   [h for h in (_option(command, "--api-allowed-hosts") or "").split(",") if h])
    urls = [s.get("environment", {}).get("CONTROLPLANE_API_URL") for s in services.values()]
    urls += [_option(s["command"], "--api-url") for s in services.values() if isinstance(s.get("command"), list)]
    hosts = {parse_host(urlsplit(url).netloc) for url in urls if url}
    assert hosts and all(host is not None and allowed.allows(host[0]) for host in hosts), hosts


def test_wiring_matches_the_dataplanes() -> None:
    services = _compose()["services"]
    assert services["jaeger"]["image"].startswith("jaegertracing/all-in-one")
    assert services["jaeger"]["environment"]["COLLECTOR_ZIPKIN_HOST_PORT"] == ":9411"
    assert "16686:16686" in services["jaeger"]["ports"]
    command = services["control-plane"]["command"]
    assert command[:4] == ["controlplane", "run", "--api-address", "0.0.0.0"]
    _assert_api_hosts_allowed(services)
    # Writes from other containers need the admin token the control plane writes into the shared volume.
    token_file = _option(command, "--admin-token-file")
    for name in ("setup", *_sidecars(services)):
        assert services[name]["environment"]["CONTROLPLANE_API_TOKEN_FILE"] == token_file, name
        assert f"cp-secrets:{token_file.rsplit('/', 1)[0]}" in services[name]["volumes"], name
    sidecars = _sidecars(services)
    apps = {}
    for name, sidecar in sidecars.items():
        app_name = sidecar["network_mode"].removeprefix("service:")
        app = services[app_name]
        assert sidecar["depends_on"]["setup"]["condition"] == "service_completed_successfully", name
        assert _option(sidecar["command"], "--cp-address") == "control-plane:5678", name
        spec = decode_resource(yaml.safe_load((ROOT / _option(sidecar["command"], "-f")).read_text())).spec
        assert isinstance(spec, mesh_pb2.Dataplane)
        inbound = spec.networking.inbound[0]
        assert spec.networking.address == app["networks"]["mesh"]["ipv4_address"], name
        assert inbound.service_port == int(_option(app["command"], "--port") or 0), name
        assert inbound.tags["kuma.io/protocol"] == "http", name
        next_url = _option(app["command"], "--next")
        outbound_ports = [o.port for o in spec.networking.outbound]
        assert outbound_ports == ([int(next_url.rsplit(":", 1)[1])] if next_url else []), name
        apps[inbound.tags["kuma.io/service"]] = (spec, app_name)
    # frontend -> backend -> db: each outbound names a service that has a sidecar.
    for spec, _ in apps.values():
        assert all(o.tags["kuma.io/service"] in apps for o in spec.networking.outbound)
    traffic = " ".join(services["traffic"]["command"])
    frontend = apps["frontend"][0]
    assert f"http://{frontend.networking.address}:{frontend.networking.inbound[0].port}/" in traffic


def _setup_files(services: Mapping[str, Any] | None = None) -> list[Path]:
    command = " ".join((services or _compose()["services"])["setup"]["command"])
    return [ROOT / path for path in re.findall(r"apply -f (\S+)", command)]


async def test_setup_and_dataplane_files_apply(tmp_path: Path) -> None:
    """What `setup` and the sidecars send, in compose order, is accepted by a real control plane."""
    files = _setup_files()
    assert [p.name for p in files] == ["zipkin-mesh.yaml", "trace-all-traffic.yaml"]
    assert "http://jaeger:9411/api/v2/spans" in files[0].read_text()
    dataplanes = [ROOT / _option(s["command"], "-f") for s in _sidecars(_compose()["services"]).values()]
    token_file = tmp_path / "admin-token"
    # As in compose: writes are not from localhost there, so here localhost is not admin either.
    config = RunConfig(store_url="memory", api_host="127.0.0.1", api_port=0, xds_host="127.0.0.1", xds_port=0,
                       debounce_s=0.02, max_wait_s=0.2, api_localhost_is_admin=False, admin_token_file=token_file)
    async with running(config) as plane:
        client = ApiClient(f"http://127.0.0.1:{plane.api_port}", ApiSettings(token=token_file.read_text().strip()))
        for path in [*files, *dataplanes]:
            await asyncio.to_thread(apply_all, client, decode_all(path.read_text()), False)
        body = await asyncio.to_thread(client.request, "GET", "/meshes/default/dataplanes")
    assert isinstance(body.body, dict) and body.body["total"] == 3


def _dockerfile() -> tuple[list[list[str]], list[str], list[str]]:
    """(COPY source lists, the pip install argv, the CMD argv) of the Dockerfile."""
    copies, pip, cmd = [], [], []
    for line in DOCKERFILE.read_text().splitlines():
        instruction, _, rest = line.partition(" ")
        if instruction == "COPY":
            copies.append(shlex.split(rest)[:-1])
        elif instruction == "RUN" and rest.startswith("pip install"):
            pip = shlex.split(rest)
        elif instruction == "CMD":
            cmd = yaml.safe_load(rest)
    assert copies and pip and cmd, "Dockerfile lost its COPY / RUN pip install / CMD lines"
    return copies, pip, cmd


@pytest.mark.e2e
def test_dockerfile_install_steps_in_a_fresh_venv(tmp_path: Path) -> None:
    """The image's steps, minus Docker: copy the build context, pip install it, run the console script."""
    copies, pip, cmd = _dockerfile()
    context = tmp_path / "src"
    context.mkdir()
    for sources in copies:
        for source in sources:
            path = ROOT / source
            if path.is_dir():
                shutil.copytree(path, context / source, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            else:
                shutil.copy2(path, context / source)
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    bin_dir = env_dir / "bin"
    env = {**os.environ, "PATH": f"{bin_dir}:/usr/local/bin:/usr/bin:/bin"}  # nothing from our own venv
    install = subprocess.run([str(bin_dir / "python"), "-m", *pip], cwd=context, capture_output=True, text=True,
                             timeout=INSTALL_TIMEOUT_S, check=False, env=env)
    assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]
    version = subprocess.run([str(bin_dir / cmd[0]), "--version"], capture_output=True, text=True, timeout=60,
                             check=False, env=env)
    assert version.returncode == 0 and version.stdout.startswith("controlplane, version"), version
    locate = "from controlplane.dataplane.envoy import find_envoy; print(find_envoy())"
    envoy = subprocess.run([str(bin_dir / "python"), "-c", locate], capture_output=True, text=True, timeout=60,
                           check=False, env=env)
    assert envoy.returncode == 0 and envoy.stdout.strip().startswith(str(env_dir)), envoy
    # The GUI's files are package data: the installed (non-editable) package serves them. `-I` and a cwd
    # without sources, so nothing but the venv's site-packages can provide `controlplane`.
    gui = ("import controlplane, json; from controlplane.api.gui import load_gui; "
           "print(json.dumps([controlplane.__file__, sorted(load_gui().assets)]))")
    listed = subprocess.run([str(bin_dir / "python"), "-I", "-c", gui], capture_output=True, text=True, timeout=60,
                            check=False, env=env, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    where, assets = json.loads(listed.stdout)
    assert where.startswith(str(env_dir)) and assets == sorted(load_gui().assets), (where, assets)
    assert sys.prefix != str(env_dir)  # really a separate environment


# --- the MeshTrace + OpenTelemetry variant (docker-compose.meshtrace.yml, an override file) -----------------


def _merged_meshtrace() -> dict[str, Any]:
    """docker-compose.yml with the override applied by compose's merge rules for the keys the override uses
    (mappings merge, `ports` add up, anything else is replaced), so the wiring checks run without Docker;
    `test_meshtrace_variant_config_passes` checks docker-compose merges it the same way."""
    services = copy.deepcopy(_compose()["services"])
    override: dict[str, Any] = yaml.safe_load(MESHTRACE_OVERRIDE.read_text())
    assert set(override) == {"services"}, override
    for name, changes in override["services"].items():
        assert name in services, f"the override names {name!r}, which docker-compose.yml does not have"
        target = services[name]
        for key, value in changes.items():
            if isinstance(value, dict):
                target[key] = {**target.get(key, {}), **value}
            elif key == "ports":
                target[key] = [*target.get(key, []), *value]
            else:
                target[key] = value
    return services


def test_meshtrace_variant_config_passes() -> None:
    services = _compose_config(COMPOSE, MESHTRACE_OVERRIDE)
    assert set(services) == set(_compose()["services"])
    merged = _merged_meshtrace()
    assert services["jaeger"]["environment"] == merged["jaeger"]["environment"]
    assert services["setup"]["command"] == merged["setup"]["command"]
    assert {(p["published"], p["target"]) for p in services["jaeger"]["ports"]} == {
        tuple(int(n) for n in p.split(":")) for p in merged["jaeger"]["ports"]}
    _assert_api_hosts_allowed(services)


def test_meshtrace_variant_sends_otlp_to_jaegers_grpc_port() -> None:
    services = _merged_meshtrace()
    jaeger = services["jaeger"]
    assert jaeger["environment"]["COLLECTOR_OTLP_ENABLED"] == "true"
    assert "4317:4317" in jaeger["ports"]
    documents = yaml.safe_load_all(_setup_files(services)[0].read_text())
    (meshtrace,) = [doc for doc in documents if doc["type"] == "MeshTrace"]
    (backend,) = meshtrace["spec"]["default"]["backends"]
    host, port = backend["openTelemetry"]["endpoint"].rsplit(":", 1)
    # The endpoint is the jaeger service by name, on the network every app (and so its sidecar) is on.
    assert (backend["type"], host, port) == ("OpenTelemetry", "jaeger", "4317")
    assert set(jaeger["networks"]) == {"mesh"}
    for name, sidecar in _sidecars(services).items():
        app = services[sidecar["network_mode"].removeprefix("service:")]
        assert set(app["networks"]) == {"mesh"}, name
        assert sidecar["depends_on"]["setup"]["condition"] == "service_completed_successfully", name
    # `setup` still reaches the API by a name the control plane allows, with the admin token.
    assert services["setup"]["environment"] == _compose()["services"]["setup"]["environment"]
    _assert_api_hosts_allowed(services)


async def test_meshtrace_setup_and_dataplane_files_apply_and_generate_the_otlp_cluster(tmp_path: Path) -> None:
    """What the variant's `setup` and the sidecars send is accepted, and each sidecar gets Kuma's collector
    cluster: `meshtrace:opentelemetry`, HTTP/2, to jaeger:4317 by DNS."""
    services = _merged_meshtrace()
    files = _setup_files(services)
    assert [p.name for p in files] == ["meshtrace-opentelemetry.yaml"]
    dataplanes = [ROOT / _option(s["command"], "-f") for s in _sidecars(services).values()]
    token_file = tmp_path / "admin-token"
    config = RunConfig(store_url="memory", api_host="127.0.0.1", api_port=0, xds_host="127.0.0.1", xds_port=0,
                       debounce_s=0.02, max_wait_s=0.2, api_localhost_is_admin=False, admin_token_file=token_file)
    async with running(config) as plane:
        client = ApiClient(f"http://127.0.0.1:{plane.api_port}", ApiSettings(token=token_file.read_text().strip()))
        for path in [*files, *dataplanes]:
            await asyncio.to_thread(apply_all, client, decode_all(path.read_text()), False)

        def clusters() -> dict[str, Any]:
            try:
                xds = client.request("GET", "/meshes/default/dataplanes/frontend-1/xds").body
            except ApiFailure as failure:  # 404 until the reconciler generated the dataplane's config
                assert failure.status == 404, failure
                return {}
            assert isinstance(xds, dict)
            return {c["name"]: c for c in xds["types"].get("Cluster", {}).get("resources", [])}

        deadline = asyncio.get_running_loop().time() + 10
        while "meshtrace:opentelemetry" not in (found := await asyncio.to_thread(clusters)):
            assert asyncio.get_running_loop().time() < deadline, f"no collector cluster: {sorted(found)}"
            await asyncio.sleep(0.05)  # the reconciler publishes after its debounce; poll under the deadline
    cluster = found["meshtrace:opentelemetry"]
    endpoint = cluster["loadAssignment"]["endpoints"][0]["lbEndpoints"][0]["endpoint"]["address"]["socketAddress"]
    assert (cluster["type"], endpoint) == ("STRICT_DNS", {"address": "jaeger", "portValue": 4317})
    assert "http2ProtocolOptions" in str(cluster["typedExtensionProtocolOptions"])
