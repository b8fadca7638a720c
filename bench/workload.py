"""Seeded mesh generator for the scale benchmark (reference/performance.md §7.2), and the expected config.

Responsible for: the mesh shape (S services × I instances, one proxy per instance, each proxy reaching R
other services over HTTP), the Kuma documents the driver PUTs, and the *expected* per-proxy snapshots for a
given set of documents (built with the control plane's own pure generator, so the floor server serves the
very same bytes and the harness knows every proxy's target versions before the clock starts). Also the
expected-push computation (which proxy must receive which type after a change). Pure: no I/O, no clock.

Must not: talk to the control plane or the clients.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from controlplane.resources.codec import decode_resource
from controlplane.resources.dataplane import DATAPLANE
from controlplane.resources.mesh import MESH as MESH_KIND
from controlplane.xds import types
from controlplane.xds.entries import ResourceInterner
from controlplane.xds.generate.context import build_mesh_context, build_proxy
from controlplane.xds.generate.generators import generate_snapshot
from controlplane.xds.node import node_id
from controlplane.xds.snapshot import Snapshot

MESH: Final = "default"
ADS_TYPES: Final = types.ADS_ORDER
TYPE_CODES: Final = {type_url: i for i, type_url in enumerate(ADS_TYPES)}
SHORT: Final = ("CDS", "EDS", "LDS", "RDS")
Mode = Literal["sotw", "delta"]


@dataclass(frozen=True, slots=True)
class ProxySpec:
    """One simulated (or real) proxy: its Dataplane name, the service it serves and what it reaches."""

    name: str
    service: str
    address: str
    inbound_port: int
    outbounds: tuple[str, ...]
    outbound_ports: tuple[int, ...]

    @property
    def node_id(self) -> str:
        return node_id(MESH, self.name)


@dataclass(frozen=True, slots=True)
class Workload:
    proxies: tuple[ProxySpec, ...]
    services: tuple[str, ...]
    reach: int
    seed: int

    def proxies_of(self, service: str) -> list[ProxySpec]:
        return [p for p in self.proxies if p.service == service]

    def clients_of(self, service: str) -> list[ProxySpec]:
        return [p for p in self.proxies if service in p.outbounds]

    def most_reached_service(self) -> str:
        counts = {s: 0 for s in self.services}
        for proxy in self.proxies:
            for service in proxy.outbounds:
                counts[service] += 1
        return max(sorted(counts), key=lambda s: counts[s])


def generate_workload(proxies: int, *, instances: int = 2, reach: int = 5, seed: int = 1) -> Workload:
    """`proxies` proxies over ceil(proxies / instances) services; deterministic for a given seed."""
    if proxies < 1 or instances < 1:
        raise ValueError("proxies and instances must be >= 1")
    n_services = max(2, -(-proxies // instances))
    services = tuple(f"svc-{i}" for i in range(n_services))
    rng = random.Random(seed)
    reach = min(reach, n_services - 1)
    specs = []
    for i in range(proxies):
        service = services[i % n_services]
        others = [s for s in services if s != service]
        outbounds = tuple(sorted(rng.sample(others, reach)))
        address = f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"
        specs.append(ProxySpec(f"dp-{i}", service, address, 8080, outbounds,
                               tuple(10001 + k for k in range(reach))))
    return Workload(tuple(specs), services, reach, seed)


# --- Kuma documents -----------------------------------------------------------------------------------


def mesh_doc(*, sampling: float = 100.0, backend: str = "zipkin", port: int = 9411) -> dict[str, Any]:
    """The mesh with one zipkin backend (always defined: S2a/S2b turn tracing on with a TrafficTrace)."""
    zipkin = {"name": backend, "type": "zipkin", "sampling": sampling,
              "conf": {"url": f"http://10.255.0.1:{port}/api/v2/spans"}}
    return {"type": "Mesh", "name": MESH, "tracing": {"defaultBackend": backend, "backends": [zipkin]}}


def traffic_trace_doc(name: str, service: str = "*") -> dict[str, Any]:
    return {"type": "TrafficTrace", "mesh": MESH, "name": name,
            "selectors": [{"match": {"kuma.io/service": service}}]}


MESH_TRACE_DEFAULTS: Final = "defaults"
MESH_TRACE_TRACING: Final = "tracing"


def meshtrace_docs(*, sampling: float = 100.0, port: int = 9411) -> tuple[dict[str, Any], dict[str, Any]]:
    """The MeshTrace counterpart of `mesh_doc` + a mesh-wide TrafficTrace, written so every proxy *merges*:
    `defaults` (kind Mesh) sets the sampling and `backends: []` (tracing off on its own), and `tracing` (kind
    MeshSubset on `kuma.io/protocol: http`, which ranks above Mesh) adds the same zipkin collector. Merged:
    the collector from `tracing`, the sampling from `defaults`, i.e. the TrafficTrace's effective config."""
    defaults = {"type": "MeshTrace", "mesh": MESH, "name": MESH_TRACE_DEFAULTS, "spec": {
        "targetRef": {"kind": "Mesh"}, "default": {"backends": [], "sampling": {"overall": _percent(sampling)}}}}
    tracing = {"type": "MeshTrace", "mesh": MESH, "name": MESH_TRACE_TRACING, "spec": {
        "targetRef": {"kind": "MeshSubset", "tags": {"kuma.io/protocol": "http"}},
        "default": {"backends": [{"type": "Zipkin", "zipkin": {"url": f"http://10.255.0.1:{port}/api/v2/spans"}}]}}}
    return defaults, tracing


def _percent(value: float) -> int | str:
    """A MeshTrace sampling value: an integer, or a decimal string (Kuma's `Decimal`; a bare float is not one)."""
    return int(value) if float(value).is_integer() else str(value)


def dataplane_doc(proxy: ProxySpec, *, address: str | None = None) -> dict[str, Any]:
    outbound = [{"port": port, "tags": {"kuma.io/service": service}}
                for service, port in zip(proxy.outbounds, proxy.outbound_ports, strict=True)]
    return {
        "type": "Dataplane", "mesh": MESH, "name": proxy.name,
        "networking": {
            "address": address or proxy.address,
            "inbound": [{"port": proxy.inbound_port, "servicePort": proxy.inbound_port + 1,
                         "tags": {"kuma.io/service": proxy.service, "kuma.io/protocol": "http"}}],
            "outbound": outbound,
        },
    }


def doc_path(doc: Mapping[str, Any]) -> str:
    """HTTP API path of a document."""
    if doc["type"] == "Mesh":
        return f"/meshes/{doc['name']}"
    ws = {"TrafficTrace": "traffic-traces", "MeshTrace": "meshtraces", "Dataplane": "dataplanes"}[doc["type"]]
    return f"/meshes/{doc['mesh']}/{ws}/{doc['name']}"


def doc_key(doc: Mapping[str, Any]) -> tuple[str, str]:
    return (str(doc["type"]), str(doc["name"]))


# --- expected configuration ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TypeConfig:
    """What one proxy must hold for one type: the SotW type version, the per-resource versions, the
    delta digest (the client computes the same digest over what it holds) and the packed resources."""

    version: str
    resources: Mapping[str, tuple[str, bytes]]
    digest: str


@dataclass(frozen=True, slots=True)
class ProxyConfig:
    node_id: str
    types: Mapping[str, TypeConfig]
    eds_clusters: Mapping[str, str] = field(default_factory=dict)

    def target(self, type_url: str, mode: Mode) -> str:
        config = self.types[type_url]
        return config.version if mode == "sotw" else config.digest


def resource_digest(held: Mapping[str, str]) -> str:
    """Digest of a name → version map, as the delta client computes it over what it holds."""
    digest = hashlib.sha256()
    for name in sorted(held):
        digest.update(f"{name}\0{held[name]}\n".encode())
    return digest.hexdigest()[:16]


def expected_configs(docs: Iterable[Mapping[str, Any]], node_ids: Sequence[str] | None = None
                     ) -> dict[str, ProxyConfig]:
    """Every proxy's expected config for this set of documents (the control plane's generator, in-process)."""
    resources = [decode_resource(dict(doc)) for doc in docs]
    mesh = next(r for r in resources if r.kind is MESH_KIND)
    policies = [r for r in resources if r.kind.policy]
    dataplanes = [r for r in resources if r.kind is DATAPLANE]
    ctx = build_mesh_context(mesh, policies, dataplanes)
    interner = ResourceInterner()
    wanted = set(node_ids) if node_ids is not None else None
    out: dict[str, ProxyConfig] = {}
    for dataplane in ctx.dataplanes:
        node = node_id(MESH, dataplane.name)
        if wanted is not None and node not in wanted:
            continue
        snapshot = Snapshot.build(generate_snapshot(ctx, build_proxy(ctx, dataplane), interner).entries())
        out[node] = config_of(node, snapshot)
    return out


def config_of(node: str, snapshot: Snapshot) -> ProxyConfig:
    by_type = {}
    for type_url in ADS_TYPES:
        entries = snapshot.resources(type_url)
        held = {name: entry.version for name, entry in entries.items()}
        by_type[type_url] = TypeConfig(
            snapshot.version(type_url),
            {name: (entry.version, entry.packed.value) for name, entry in entries.items()},
            resource_digest(held),
        )
    return ProxyConfig(node, by_type, dict(snapshot.eds_names))


def expected_pushes(before: ProxyConfig, after: ProxyConfig, mode: Mode) -> frozenset[str]:
    """Types a proxy must receive exactly once when its config goes from `before` to `after`.

    SotW: every type whose type version changed (the EDS version mixes in the versions of the EDS clusters,
    so adding or changing one also re-sends EDS: reference/xds-protocol.md §1.10). Delta: every type with a changed, added or
    removed resource, plus EDS when an EDS cluster was added or changed (the server pushes its CLA, §1.10).
    """
    out = set()
    for type_url in ADS_TYPES:
        old, new = before.types[type_url], after.types[type_url]
        if mode == "sotw":
            if old.version != new.version:
                out.add(type_url)
        elif old.digest != new.digest:
            out.add(type_url)
    if mode == "delta" and types.ENDPOINT_TYPE not in out:
        old_clusters = before.types[types.CLUSTER_TYPE].resources
        new_clusters = after.types[types.CLUSTER_TYPE].resources
        for name in after.eds_clusters:
            if old_clusters.get(name, ("",))[0] != new_clusters[name][0]:
                out.add(types.ENDPOINT_TYPE)
                break
    return frozenset(out)


def affected_counts(before: Mapping[str, ProxyConfig], after: Mapping[str, ProxyConfig], mode: Mode
                    ) -> dict[str, frozenset[str]]:
    """node → types it must receive, for every node (empty set = must receive nothing)."""
    return {node: expected_pushes(before[node], after[node], mode) for node in after}
