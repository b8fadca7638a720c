"""Dataplane tokens and TLS with real Envoys (issue 7, items 4 and 6).

The control plane runs in-process with `--dataplane-auth token` and `--tls-cert-file/--tls-key-file` (a CA
and server certificate made by the test). Envoys get their bootstrap from `build_bootstrap(token=...,
ca_cert_pem=...)`, exactly what `controlplane bootstrap --token-file --ca-cert-file` writes:
- an Envoy with its own dataplane's token reaches the ADS server over TLS, gets its config and serves
  traffic;
- an Envoy presenting another dataplane's token is refused (PERMISSION_DENIED, counted), again on every
  retry, and gets no configuration at all;
- an Envoy that does not trust the server's certificate never connects.
"""

from __future__ import annotations

import asyncio
import signal
import ssl
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from tls_certs import Certs, make_certs

from controlplane.cli.run import ControlPlane, RunConfig, running
from controlplane.dataplane.bootstrap import ReconnectBackoff, build_bootstrap

from .support.envoy import EnvoyProcess, run_envoy
from .support.plane import HOST, MESH, Api
from .support.upstream import UpstreamApp
from .support.waiting import eventually, free_port

pytestmark = pytest.mark.e2e

HOUR = timedelta(hours=1)
FAST_RETRY = ReconnectBackoff(base_s=0.1, max_s=0.5)


@dataclass
class SecurePlane:
    plane: ControlPlane
    api: Api
    certs: Certs

    def failures(self, reason: str) -> float:
        sample = self.plane.metrics.registry.get_sample_value("xds_auth_failures_total", {"reason": reason})
        return sample or 0.0


@pytest.fixture
async def secure(tmp_path: Path) -> AsyncIterator[SecurePlane]:
    certs = make_certs(tmp_path / "certs")
    config = RunConfig(store_url="memory", api_host=HOST, api_port=0, xds_host=HOST, xds_port=0, debounce_s=0.02,
                       max_wait_s=0.2, dataplane_auth="token", tls_cert_file=certs.cert, tls_key_file=certs.key)
    ssl_context = ssl.create_default_context(cafile=str(certs.ca))
    connector = aiohttp.TCPConnector(ssl=ssl_context)
    async with running(config) as plane, aiohttp.ClientSession(connector=connector) as session:
        yield SecurePlane(plane, Api(f"https://{HOST}:{plane.api_port}", session), certs)


def dataplane(name: str, inbound: int, app_port: int) -> dict[str, Any]:
    tags = {"kuma.io/service": name, "kuma.io/protocol": "http"}
    return {"type": "Dataplane", "mesh": MESH, "name": name,
            "networking": {"address": HOST, "inbound": [{"port": inbound, "servicePort": app_port, "tags": tags}]}}


async def start_envoy(stack: AsyncExitStack, secure: SecurePlane, name: str, token: str | None, workdir: Path,
                      ca_pem: str | None = None) -> EnvoyProcess:
    bootstrap = build_bootstrap(node_id=f"{MESH}.{name}", service=name, cp_host=HOST,
                                cp_port=secure.plane.xds_port, token=token, reconnect_backoff=FAST_RETRY,
                                ca_cert_pem=ca_pem if ca_pem is not None else secure.certs.ca.read_text())
    workdir.mkdir()
    return await stack.enter_async_context(run_envoy(bootstrap, workdir=workdir))


async def issue(secure: SecurePlane, name: str) -> str:
    """Through the API (localhost is admin), as `controlplane generate dataplane-token` does."""
    async with secure.api.session.post(f"{secure.api.base}/tokens/dataplane",
                                       json={"mesh": MESH, "name": name, "validFor": "1h"}) as response:
        assert response.status == 200, await response.text()
        return await response.text()


async def test_envoy_with_its_token_gets_config_over_tls(secure: SecurePlane, tmp_path: Path) -> None:
    async with AsyncExitStack() as stack, UpstreamApp("web") as app:
        inbound = free_port()
        await secure.api.apply({"type": "Mesh", "name": MESH}, dataplane("web-1", inbound, app.port))
        envoy = await start_envoy(stack, secure, "web-1", await issue(secure, "web-1"), tmp_path / "web-1")
        await eventually(lambda: _live(envoy), timeout=15, message="Envoy never became LIVE")
        await envoy.wait_listener_ready(f"inbound:{HOST}:{inbound}")
        assert (await envoy.stats(r"^control_plane\.connected_state$"))["control_plane.connected_state"] == 1
        async with aiohttp.ClientSession() as http, http.get(f"http://{HOST}:{inbound}/") as response:
            assert response.status == 200
        status = secure.plane.status.status(f"{MESH}.web-1")
        assert status is not None and status.types
        assert secure.failures("wrong_dataplane") == secure.failures("missing") == 0


async def test_envoy_with_another_dataplanes_token_gets_nothing(secure: SecurePlane, tmp_path: Path) -> None:
    async with AsyncExitStack() as stack, UpstreamApp("web") as app:
        await secure.api.apply({"type": "Mesh", "name": MESH}, dataplane("web-1", free_port(), app.port),
                               dataplane("intruder", free_port(), app.port))
        stolen = await issue(secure, "web-1")
        envoy = await start_envoy(stack, secure, "intruder", stolen, tmp_path / "intruder")
        # Refused on the first attempt and again on Envoy's retries: a condition, not a fixed wait.
        await eventually(lambda: secure.failures("wrong_dataplane") >= 3, timeout=15,
                         message="the ADS server never refused the intruder's retries")
        stats = await envoy.stats(r"^control_plane\.connected_state$")
        assert stats["control_plane.connected_state"] == 0
        dump = await envoy.config_dump()
        dynamic = [c for c in dump["configs"] if "dynamic_listeners" in c or "dynamic_active_clusters" in c]
        assert all(not c.get("dynamic_listeners") and not c.get("dynamic_active_clusters") for c in dynamic)
        assert f"{MESH}.intruder" not in secure.plane.status.connected_nodes()


async def test_envoy_that_does_not_trust_the_certificate_never_connects(secure: SecurePlane, tmp_path: Path) -> None:
    other_ca = make_certs(tmp_path / "other", ca_name="another CA").ca.read_text()
    async with AsyncExitStack() as stack, UpstreamApp("web") as app:
        await secure.api.apply({"type": "Mesh", "name": MESH}, dataplane("web-1", free_port(), app.port))
        envoy = await start_envoy(stack, secure, "web-1", await issue(secure, "web-1"), tmp_path / "web-1",
                                  ca_pem=other_ca)
        await eventually(lambda: _ssl_failures(envoy), timeout=15, message="Envoy never failed a TLS handshake")
        assert (await envoy.stats(r"^control_plane\.connected_state$"))["control_plane.connected_state"] == 0
        assert f"{MESH}.web-1" not in secure.plane.status.connected_nodes()


async def _live(envoy: EnvoyProcess) -> bool:
    return await envoy.server_state() == "LIVE"


async def _ssl_failures(envoy: EnvoyProcess) -> bool:
    stats = await envoy.stats(r"^cluster\.ads_cluster\.ssl\.fail_verify_error$")
    return int(stats.get("cluster.ads_cluster.ssl.fail_verify_error", 0)) > 0


async def test_dataplane_run_with_token_file_and_ca(secure: SecurePlane, tmp_path: Path) -> None:
    """`controlplane dataplane run --token-file --ca-cert-file` against an HTTPS API and a TLS, token-checking
    ADS server: registered, connected, and traffic flows through its inbound."""
    await secure.api.apply({"type": "Mesh", "name": MESH})
    token_file = tmp_path / "web-1.token"
    token_file.write_text(await issue(secure, "web-1") + "\n")
    inbound = free_port()
    async with UpstreamApp("web") as app:
        (tmp_path / "dp.yaml").write_text(yaml.safe_dump(dataplane("web-1", inbound, app.port)))
        log_path = tmp_path / "runner.log"
        with log_path.open("wb") as log:
            process = await asyncio.create_subprocess_exec(
                str(Path(sys.executable).parent / "controlplane"), "dataplane", "run", "-f", str(tmp_path / "dp.yaml"),
                "--cp-address", f"{HOST}:{secure.plane.xds_port}", "--api-url", secure.api.base,
                "--token-file", str(token_file), "--ca-cert-file", str(secure.certs.ca),
                stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log,
            )  # fmt: skip
        try:
            async def served() -> bool:
                async with aiohttp.ClientSession() as http, http.get(f"http://{HOST}:{inbound}/") as response:
                    return response.status == 200
            await eventually(served, timeout=20, message=f"no traffic through the sidecar\n{log_path.read_text()}")
            assert f"{MESH}.web-1" in secure.plane.status.connected_nodes()
            process.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(process.wait(), 20) == 0, log_path.read_text()
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
    assert secure.failures("missing") == secure.failures("wrong_dataplane") == 0
