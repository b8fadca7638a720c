"""The ordered generators, `generate` (one proxy, reusing what did not change) and `generate_snapshot`.

Each generator is one concern of a proxy's configuration and says what it reads (`inputs`): its
Dataplane, its tracing, the destinations it reaches. A proxy's last `Generation` keeps every concern's
output with the inputs it came from, so regenerating a proxy re-runs only the concerns whose inputs
changed: after a mesh-wide tracing change only the two listener concerns run (and their listeners are
re-rendered, not rebuilt: traced_listener.py); after an endpoint change only the destinations. Inputs are
compared with `==`, which for the same objects (the Dataplane resource, unchanged destinations) is an
identity check; anything a generator reads must be in its inputs, or a change would be missed (the
golden and incremental tests in tests/unit/xds/generate/ run every concern both ways).

Any failure is re-raised as GenerationError naming the generator and the proxy, so the reconciler can keep
the previous snapshot. No I/O, clock, environment or logging here: the same input gives byte-identical
output. The interner is where built resources are shared across proxies and passes (xds/entries.py); it
never changes what is built, only how often.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from controlplane.errors import GenerationError
from controlplane.xds.entries import ResourceEntry, ResourceInterner
from controlplane.xds.generate.context import MeshContext, Proxy
from controlplane.xds.generate.inbound import (
    generate_inbound_listeners,
    generate_inbound_routing,
    inbound_listener_inputs,
    inbound_routing_inputs,
)
from controlplane.xds.generate.notes import ListenerNote
from controlplane.xds.generate.outbound import (
    destination_inputs,
    generate_destinations,
    generate_outbound_listeners,
    outbound_listener_inputs,
)
from controlplane.xds.generate.resource_set import ResourceSet, merge_type
from controlplane.xds.generate.tracing import collector_inputs, generate_tracing


@dataclass(frozen=True, slots=True)
class Generator:
    """One concern: what it reads of the context and the proxy, and what it generates from that."""

    name: str
    inputs: Callable[[MeshContext, Proxy], tuple[object, ...]]
    generate: Callable[[MeshContext, Proxy, ResourceInterner], ResourceSet]


GENERATORS: Final[tuple[Generator, ...]] = (
    Generator("inbound", inbound_routing_inputs, generate_inbound_routing),
    Generator("inbound-listeners", inbound_listener_inputs, generate_inbound_listeners),
    Generator("outbound", destination_inputs, generate_destinations),
    Generator("outbound-listeners", outbound_listener_inputs, generate_outbound_listeners),
    Generator("tracing", collector_inputs, generate_tracing),
)


@dataclass(frozen=True, slots=True, eq=False)
class Part:
    """One generator's output for one proxy and the inputs it was generated from."""

    inputs: tuple[object, ...]
    resources: ResourceSet


@dataclass(frozen=True, slots=True, eq=False)
class Generation:
    """A proxy's generated configuration, one `Part` per generator (in `GENERATORS` order), and the types
    whose resources differ from the generation it was made from (every type when made from scratch)."""

    parts: tuple[Part, ...]
    changed_types: frozenset[str]

    @property
    def listeners(self) -> tuple[ListenerNote, ...]:
        return tuple(note for part in self.parts for note in part.resources.listeners)

    def resources(self) -> ResourceSet:
        """Every part merged (raises DuplicateResourceError on a clash between concerns)."""
        merged = ResourceSet()
        for part in self.parts:
            merged.merge(part.resources)
        return merged

    def entries(self, type_url: str) -> dict[str, ResourceEntry]:
        """name → entry of one type, from every part (raises DuplicateResourceError on a clash)."""
        return merge_type((part.resources for part in self.parts), type_url)


def generate(ctx: MeshContext, proxy: Proxy, cache: ResourceInterner,
             previous: Generation | None = None) -> Generation:
    """The configuration of `proxy`, re-running only the generators whose inputs differ from `previous`.

    Raises GenerationError(generator=..., proxy=<mesh>.<name>) on any failure."""
    parts: list[Part] = []
    changed: set[str] = set()
    for i, generator in enumerate(GENERATORS):
        try:
            inputs = generator.inputs(ctx, proxy)
            before = previous.parts[i] if previous is not None else None
            if before is not None and before.inputs == inputs:
                parts.append(before)
                continue
            part = Part(inputs, generator.generate(ctx, proxy, cache))
        except Exception as exc:
            raise GenerationError(generator=generator.name, proxy=proxy.id, cause=exc) from exc
        parts.append(part)
        changed.update(part.resources.entries())
        if before is not None:
            changed.update(before.resources.entries())
    return Generation(tuple(parts), frozenset(changed))


def generate_snapshot(ctx: MeshContext, proxy: Proxy, cache: ResourceInterner | None = None) -> ResourceSet:
    """All resources of `proxy`, generated from scratch; raises GenerationError like `generate`.

    Without a `cache` a private one is used (tests, one-off generation)."""
    generation = generate(ctx, proxy, cache if cache is not None else ResourceInterner())
    try:
        return generation.resources()
    except Exception as exc:
        raise GenerationError(generator="merge", proxy=proxy.id, cause=exc) from exc
