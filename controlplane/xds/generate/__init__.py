"""Envoy configuration for one proxy: pure functions from (MeshContext, Proxy) to a ResourceSet.

`generate_snapshot` runs the generators in a fixed order and merges their output; any failure is re-raised
as GenerationError naming the generator and the proxy, so the reconciler can keep the previous snapshot.
No I/O, clock, environment or logging here: the same input gives byte-identical output.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from controlplane.errors import GenerationError
from controlplane.xds.generate.context import Endpoint, MeshContext, Proxy, build_mesh_context, build_proxy
from controlplane.xds.generate.inbound import generate_inbound
from controlplane.xds.generate.outbound import generate_outbound
from controlplane.xds.generate.resource_set import ResourceSet
from controlplane.xds.generate.tracing import generate_tracing

Generator = Callable[[MeshContext, Proxy], ResourceSet]

GENERATORS: Final[tuple[tuple[str, Generator], ...]] = (
    ("inbound", generate_inbound),
    ("outbound", generate_outbound),
    ("tracing", generate_tracing),
)


def generate_snapshot(ctx: MeshContext, proxy: Proxy) -> ResourceSet:
    """All resources of `proxy`; raises GenerationError(generator=..., proxy=<mesh>.<name>) on any failure."""
    resources = ResourceSet()
    for name, generate in GENERATORS:
        try:
            resources.merge(generate(ctx, proxy))
        except Exception as exc:
            raise GenerationError(generator=name, proxy=proxy.id, cause=exc) from exc
    return resources


__all__ = [
    "GENERATORS",
    "Endpoint",
    "Generator",
    "MeshContext",
    "Proxy",
    "ResourceSet",
    "build_mesh_context",
    "build_proxy",
    "generate_snapshot",
]
