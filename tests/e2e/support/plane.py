"""Driving the real control plane from end-to-end tests: its HTTP API, the two-proxy topology, and waiting
until Envoys have applied what the control plane generated.

Responsible for: talking to the API exactly as kumactl does (PUT/DELETE of the JSON form), describing the
usual topology's Dataplanes, knowing when a change has reached Envoy (ACKed *and* nothing warming or
draining), sending traffic, and proving that Envoy traced nothing. Must not: write to the store directly,
or assert what a particular test is about.

The usual topology (all on 127.0.0.1): dataplane `backend-1` (inbound P1 → the "backend" app) and
`web-1` (inbound P2 → the "web" app, outbound P3 → service backend). Requests sent to P3 leave through
web's outbound listener and enter backend's inbound listener, so one request makes one span in each proxy.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

import aiohttp

from .envoy import EnvoyProcess
from .upstream import UpstreamApp
from .waiting import eventually, free_port

MESH: Final = "default"
HOST: Final = "127.0.0.1"
CONVERGE_TIMEOUT_S: Final = 15.0
ABSENCE_WINDOW_S: Final = 0.5
_WS_PATHS: Final = {"TrafficTrace": "traffic-traces", "MeshTrace": "meshtraces", "Dataplane": "dataplanes"}


def resource_path(doc: Mapping[str, Any]) -> str:
    """The API path of a resource document (Kuma's routes, kuma-tracing.md §5.1)."""
    if doc["type"] == "Mesh":
        return f"/meshes/{doc['name']}"
    return f"/meshes/{doc['mesh']}/{_WS_PATHS[doc['type']]}/{doc['name']}"


@dataclass
class Api:
    """A client of the control plane's HTTP API; helpers assert a 2xx answer."""

    base: str
    session: aiohttp.ClientSession

    async def request(self, method: str, path: str, body: object = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if data is not None else {}
        async with self.session.request(method, self.base + path, data=data, headers=headers) as response:
            text = await response.text()
            return response.status, json.loads(text) if text else None

    async def apply(self, *docs: Mapping[str, Any]) -> None:
        """PUT each document, in order, as `kumactl apply` does."""
        for doc in docs:
            status, body = await self.request("PUT", resource_path(doc), dict(doc))
            assert status in (200, 201), f"PUT {resource_path(doc)}: {status} {body}"

    async def delete(self, doc: Mapping[str, Any]) -> None:
        status, body = await self.request("DELETE", resource_path(doc))
        assert status == 200, f"DELETE {resource_path(doc)}: {status} {body}"

    async def get(self, path: str) -> Any:
        status, body = await self.request("GET", path)
        assert status == 200, f"GET {path}: {status} {body}"
        return body

    async def xds(self, dataplane: str) -> dict[str, Any]:
        """``GET /meshes/default/dataplanes/<name>/xds``: config per type, versions sent/ACKed, last NACK."""
        body: dict[str, Any] = await self.get(f"/meshes/{MESH}/dataplanes/{dataplane}/xds")
        return body

    async def policies(self, dataplane: str) -> dict[str, Any]:
        body: dict[str, Any] = await self.get(f"/meshes/{MESH}/dataplanes/{dataplane}/policies")
        return body

    async def versions(self, dataplane: str) -> dict[str, str]:
        """Type → version of the dataplane's current snapshot (what the control plane wants it to have)."""
        status = await self.xds(dataplane)
        return {name: entry["version"] for name, entry in status["types"].items() if "version" in entry}

    async def converged(self, dataplane: str, previous: Mapping[str, str] | None = None) -> bool:
        """The proxy is connected and ACKed the current snapshot's version of every type it was sent.

        With ``previous`` (from `versions`) the snapshot must also differ from it: the change the caller
        just made has been turned into config (the reconciler debounces, so right after a PUT the old
        snapshot is still current and trivially ACKed).
        """
        status = await self.xds(dataplane)
        if not status["connected"]:
            return False
        current = {name: entry["version"] for name, entry in status["types"].items() if "version" in entry}
        if previous is not None and current == dict(previous):
            return False
        sent = [entry for entry in status["types"].values() if "versionSent" in entry]
        return bool(sent) and all(
            entry["versionAcked"] == entry["versionSent"] == entry["version"] for entry in sent
        )


@dataclass
class Topology:
    """Ports and Dataplane documents of the two-proxy topology; see the module docstring."""

    backend_app: UpstreamApp
    web_app: UpstreamApp
    backend_inbound: int = field(default_factory=free_port)
    web_inbound: int = field(default_factory=free_port)
    web_outbound: int = field(default_factory=free_port)

    @property
    def outbound_url(self) -> str:
        """Where requests enter the mesh: web's outbound listener to service backend."""
        return f"http://{HOST}:{self.web_outbound}"

    @property
    def backend_listener(self) -> str:
        return f"inbound:{HOST}:{self.backend_inbound}"

    @property
    def web_listener(self) -> str:
        return f"inbound:{HOST}:{self.web_inbound}"

    @property
    def outbound_listener(self) -> str:
        return f"outbound:{HOST}:{self.web_outbound}"

    def backend_dataplane(self, protocol: str = "http", **tags: str) -> dict[str, Any]:
        inbound_tags = {"kuma.io/service": "backend", "kuma.io/protocol": protocol, **tags}
        return _dataplane("backend-1", self.backend_inbound, self.backend_app.port, inbound_tags)

    def web_dataplane(self, **tags: str) -> dict[str, Any]:
        inbound_tags = {"kuma.io/service": "web", "kuma.io/protocol": "http", **tags}
        doc = _dataplane("web-1", self.web_inbound, self.web_app.port, inbound_tags)
        doc["networking"]["outbound"] = [{"port": self.web_outbound, "tags": {"kuma.io/service": "backend"}}]
        return doc


def _dataplane(name: str, port: int, service_port: int, tags: dict[str, str]) -> dict[str, Any]:
    return {
        "type": "Dataplane",
        "mesh": MESH,
        "name": name,
        "networking": {
            "address": HOST,
            "inbound": [{"port": port, "servicePort": service_port, "tags": tags}],
        },
    }


@dataclass(frozen=True, slots=True)
class Sidecar:
    """A dataplane's name and its running Envoy."""

    name: str
    envoy: EnvoyProcess


StartSidecar = Callable[..., Awaitable[Sidecar]]
"""The `sidecars` fixture: ``await sidecars(name, service, delta=False)`` starts a LIVE Envoy."""


async def settled(envoy: EnvoyProcess) -> bool:
    """Envoy applied everything: nothing warming, no old listener or filter chain still draining.

    Draining matters to tests that change tracing: connections opened before a listener update keep the
    old filter chain (and its tracing block) until the drain ends (``--drain-time-s 1``); that includes
    web's pooled upstream connections into backend's inbound listener.
    """
    stats = await envoy.stats(
        r"^(listener_manager\.total_(listeners_warming|listeners_draining|filter_chains_draining)"
        r"|cluster_manager\.warming_clusters)$"
    )
    return len(stats) == 4 and all(value == 0 for value in stats.values())


async def wait_converged(
    api: Api, *sidecars: Sidecar, previous: Mapping[str, Mapping[str, str]] | None = None
) -> None:
    """Wait until every sidecar ACKed its current snapshot (one differing from ``previous[name]`` when
    given) and its Envoy settled."""
    for sidecar in sidecars:
        before = previous[sidecar.name] if previous is not None else None

        async def acked(name: str = sidecar.name, before: Mapping[str, str] | None = before) -> bool:
            return await api.converged(name, before)

        async def envoy_settled(envoy: EnvoyProcess = sidecar.envoy) -> bool:
            return await settled(envoy)

        await eventually(
            acked, timeout=CONVERGE_TIMEOUT_S, message=f"{sidecar.name} never ACKed a new snapshot"
        )
        await eventually(
            envoy_settled, timeout=CONVERGE_TIMEOUT_S, message=f"Envoy of {sidecar.name} never settled"
        )


@asynccontextmanager
async def converging(api: Api, *sidecars: Sidecar) -> AsyncIterator[None]:
    """``async with converging(api, web, backend): await api.apply(...)`` returns once every listed
    sidecar ACKed the new config the body's changes produced (list only sidecars the change affects)."""
    previous = {sidecar.name: await api.versions(sidecar.name) for sidecar in sidecars}
    yield
    await wait_converged(api, *sidecars, previous=previous)


async def send(url: str, count: int = 1, *, expect: str | None = None) -> None:
    """``count`` GETs, each on a new connection (no keep-alive into a listener that has since changed)."""
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=10)) as session:
        for i in range(count):
            async with session.get(f"{url}/request-{i}") as response:
                body = await response.text()
                assert response.status == 200, f"GET {url}: {response.status} {body}"
                if expect is not None:
                    assert body == expect, body


async def counter(envoy: EnvoyProcess, name: str) -> int:
    """One counter or gauge; 0 when Envoy has not created it (e.g. no zipkin tracer yet)."""
    value = (await envoy.stats(f"^{re.escape(name)}$")).get(name, 0)
    assert isinstance(value, int), value
    return value


async def streams_done(envoy: EnvoyProcess) -> bool:
    """No proxied HTTP request is still in flight, so every span of the requests sent so far is finished.

    Envoy finishes (and, with ``min_flush_spans: 1``, flushes) a span when it destroys the stream, which
    is also when ``downstream_rq_active`` drops; the client may see the response a moment earlier.
    """
    stats = await envoy.stats(r"^http\..*\.downstream_rq_active$")
    return all(value == 0 for name, value in stats.items() if not name.startswith("http.admin."))


async def wait_streams_done(*sidecars: Sidecar) -> None:
    """Wait until no sidecar has a proxied HTTP request in flight (see `streams_done`)."""
    for sidecar in sidecars:

        async def done(envoy: EnvoyProcess = sidecar.envoy) -> bool:
            return await streams_done(envoy)

        await eventually(
            done, timeout=CONVERGE_TIMEOUT_S, message=f"{sidecar.name} still has requests in flight"
        )


ZIPKIN_SPANS_SENT: Final = "tracing.zipkin.spans_sent"
OPENTELEMETRY_SPANS_SENT: Final = "tracing.opentelemetry.spans_sent"
"""Envoy's count of spans its OpenTelemetry tracer handed to the exporter (gRPC or HTTP)."""


class _HasSpans(Protocol):
    spans: list[dict[str, Any]]


@asynccontextmanager
async def no_spans(
    collector: _HasSpans, *sidecars: Sidecar, spans_sent_stat: str = ZIPKIN_SPANS_SENT
) -> AsyncIterator[None]:
    """``async with no_spans(zipkin, web, backend): await send(...)`` proves the body's requests made no spans.

    After the body:
    1. wait until no request is in flight in any sidecar (their spans, if any, are finished);
    2. Envoy's count of spans flushed to the collector cluster (``spans_sent_stat``: zipkin's by default,
       `OPENTELEMETRY_SPANS_SENT` for OTLP) did not move (it moves synchronously when a finished span is
       flushed, ``min_flush_spans: 1``);
    3. belt and braces: the collector got nothing during the body nor within a short window after, long
       enough for a POST on loopback that was already on its way. This is the one fixed wait: absence
       cannot be awaited, and steps 1-2 already make it a formality.
    """
    spans_sent = {s.name: await counter(s.envoy, spans_sent_stat) for s in sidecars}
    collected = len(collector.spans)
    yield
    await wait_streams_done(*sidecars)
    after = {s.name: await counter(s.envoy, spans_sent_stat) for s in sidecars}
    assert after == spans_sent, f"Envoy flushed spans: before {spans_sent}, after {after}"
    await asyncio.sleep(ABSENCE_WINDOW_S)
    assert collector.spans[collected:] == [], collector.spans[collected:]
