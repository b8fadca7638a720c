"""The ordered generators and `generate_snapshot`, which runs them for one proxy.

Any failure is re-raised as GenerationError naming the generator and the proxy, so the reconciler can keep
the previous snapshot. No I/O, clock, environment or logging here: the same input gives byte-identical
output. The interner is where built resources are shared across proxies and passes (xds/entries.py); it
never changes what is built, only how often.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from controlplane.errors import GenerationError
from controlplane.xds.entries import ResourceInterner
from controlplane.xds.generate.context import MeshContext, Proxy
from controlplane.xds.generate.inbound import generate_inbound
from controlplane.xds.generate.outbound import generate_outbound
from controlplane.xds.generate.resource_set import ResourceSet
from controlplane.xds.generate.tracing import generate_tracing

Generator = Callable[[MeshContext, Proxy, ResourceInterner], ResourceSet]

GENERATORS: Final[tuple[tuple[str, Generator], ...]] = (
    ("inbound", generate_inbound),
    ("outbound", generate_outbound),
    ("tracing", generate_tracing),
)


def generate_snapshot(ctx: MeshContext, proxy: Proxy, cache: ResourceInterner | None = None) -> ResourceSet:
    """All resources of `proxy`; raises GenerationError(generator=..., proxy=<mesh>.<name>) on any failure.

    Without a `cache` a private one is used (tests, one-off generation)."""
    cache = cache if cache is not None else ResourceInterner()
    resources = ResourceSet()
    for name, generate in GENERATORS:
        try:
            resources.merge(generate(ctx, proxy, cache))
        except Exception as exc:
            raise GenerationError(generator=name, proxy=proxy.id, cause=exc) from exc
    return resources
