"""Snapshot: the complete, immutable xDS configuration of one proxy, serialised once.

Responsible for: one proxy's resources by type (entries from entries.py, serialised once and shared across
proxies by `ResourceInterner`), the type versions, and the consistency check run before a snapshot is
published. Must not: do I/O, log, or know about streams.

Versions are content hashes, never counters: a reconnecting Envoy reports the version it holds, and a
counter that restarts at 1 would make it look up to date when it is not (reference/xds-protocol.md §1.9).
The versions of the EDS clusters are mixed into the EDS type version, so that adding or changing an EDS
cluster also re-sends EDS and the cluster never stays warming (§1.10); a change to a static cluster (the
tracing collector's) does not re-send every ClusterLoadAssignment.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from google.protobuf.message import Message

from controlplane.xds import types
from controlplane.xds.entries import ResourceEntry, ResourceInterner, short_hash

__all__ = ["ResourceEntry", "ResourceInterner", "Snapshot", "TypeResources"]


@dataclass(frozen=True, slots=True, eq=False)
class TypeResources:
    """All resources of one type in a snapshot, sorted by name, with the type's version."""

    version: str
    entries: Mapping[str, ResourceEntry]


def _type_version(entries: Iterable[ResourceEntry], *, presorted: bool = False) -> str:
    ordered = entries if presorted else sorted(entries, key=lambda e: e.name)
    return short_hash("".join([f"{entry.name}\0{entry.version}\n" for entry in ordered]).encode())


_EMPTY = TypeResources(version=_type_version(()), entries=MappingProxyType({}))

ResourceInput = Mapping[str, Mapping[str, "Message | ResourceEntry"]]


@dataclass(frozen=True, slots=True, eq=False)
class Snapshot:
    """Immutable per-proxy configuration: type URL → `TypeResources`. Build it with `Snapshot.build`."""

    types: Mapping[str, TypeResources]
    eds_names: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    """EDS clusters of CDS: cluster name → ClusterLoadAssignment name (service_name or cluster name)."""

    @classmethod
    def build(cls, resources: ResourceInput, *, interner: ResourceInterner | None = None) -> Snapshot:
        """Serialise, hash and (with an interner) share every resource; compute the type versions."""
        return cls._assemble({}, resources, interner)

    def update(self, changed: Mapping[str, Mapping[str, ResourceEntry]]) -> Snapshot:
        """This snapshot with the resources of the types in `changed` replaced (the others kept as they are,
        versions included): a tracing change rebuilds the listener type only."""
        kept = {type_url: typed for type_url, typed in self.types.items() if type_url not in changed}
        if types.CLUSTER_TYPE not in changed and types.ENDPOINT_TYPE not in changed:
            # The EDS version mixes in the EDS clusters; with neither changed it stays, and so do eds_names.
            return Snapshot._assemble(kept, changed, None, self.eds_names)
        kept.pop(types.ENDPOINT_TYPE, None)
        endpoints = self.types.get(types.ENDPOINT_TYPE)
        unmixed = dict(changed)
        if types.ENDPOINT_TYPE not in changed and endpoints is not None:
            unmixed[types.ENDPOINT_TYPE] = endpoints.entries
        return Snapshot._assemble(kept, unmixed, None)

    @classmethod
    def _assemble(cls, kept: Mapping[str, TypeResources], resources: ResourceInput,
                  interner: ResourceInterner | None, eds_names: Mapping[str, str] | None = None) -> Snapshot:
        by_type: dict[str, TypeResources] = dict(kept)
        for type_url in sorted(resources):
            entries = {
                name: _to_entry(type_url, name, item, interner)
                for name, item in sorted(resources[type_url].items())
            }
            by_type[type_url] = TypeResources(_type_version(entries.values(), presorted=True),
                                              MappingProxyType(entries))
        if eds_names is not None:
            return cls(types=MappingProxyType(by_type), eds_names=eds_names)
        cds = by_type.get(types.CLUSTER_TYPE, _EMPTY)
        eds = by_type.get(types.ENDPOINT_TYPE, _EMPTY)
        names: dict[str, str] = {}
        eds_clusters = [eds.version]
        for name, entry in cds.entries.items():  # sorted by name above
            eds_name = entry.facts.eds_name
            if eds_name is not None:
                names[name] = eds_name
                eds_clusters.append(f"{name}\0{entry.version}")
        # A changed or added EDS cluster warms until its CLA arrives (§1.10), so the versions of the EDS
        # clusters are mixed into the EDS version: such a change re-sends EDS. Kuma mixes in the whole CDS
        # version; that also re-sends every CLA when only a static cluster (the tracing collector) changes.
        mixed = short_hash("|".join(eds_clusters).encode())
        by_type[types.ENDPOINT_TYPE] = TypeResources(mixed, eds.entries)
        return cls(types=MappingProxyType(by_type), eds_names=MappingProxyType(names))

    def version(self, type_url: str) -> str:
        """Type version; a type absent from the snapshot has the (non-empty) version of the empty set."""
        return self.types.get(type_url, _EMPTY).version

    def resources(self, type_url: str) -> Mapping[str, ResourceEntry]:
        return self.types.get(type_url, _EMPTY).entries

    def versions(self) -> dict[str, str]:
        """Type URL → version for the four ADS types and any other type present."""
        return {type_url: self.version(type_url) for type_url in (*types.ADS_ORDER, *sorted(self.types))}

    def same_content(self, other: Snapshot) -> bool:
        if self.types.keys() != other.types.keys():
            return self.versions() == other.versions()  # an absent type equals an empty one
        return all(other.types[url].version == typed.version for url, typed in self.types.items())

    def check_consistent(self, changed: Collection[str] | None = None) -> list[str]:
        """Every problem that would leave Envoy warming or routing to nothing; empty when consistent.

        With `changed` (the types replaced by `update` on a consistent snapshot) only the checks that
        involve one of those types run. go-control-plane's `Consistent()` demands exact equality of EDS/RDS
        sets; we only demand that what is referenced exists, because an extra ClusterLoadAssignment or
        route config is harmless.
        """
        def involves(*type_urls: str) -> bool:
            return changed is None or any(type_url in changed for type_url in type_urls)

        problems = _name_problems(self, changed)
        clusters = self.resources(types.CLUSTER_TYPE)
        endpoints = self.resources(types.ENDPOINT_TYPE)
        routes = self.resources(types.ROUTE_TYPE)
        if involves(types.CLUSTER_TYPE, types.ENDPOINT_TYPE):
            for cluster, eds_name in sorted(self.eds_names.items()):
                if eds_name not in endpoints:
                    problems.append(f"EDS cluster {cluster!r} has no ClusterLoadAssignment {eds_name!r}")
        if involves(types.LISTENER_TYPE, types.ROUTE_TYPE):
            for listener, route_name in _rds_references(self.resources(types.LISTENER_TYPE)):
                if route_name not in routes:
                    problems.append(f"listener {listener!r} references missing route config {route_name!r}")
        for owner, cluster in _cluster_references(self, involves(types.LISTENER_TYPE, types.CLUSTER_TYPE),
                                                  involves(types.ROUTE_TYPE, types.CLUSTER_TYPE)):
            if cluster not in clusters:
                problems.append(f"{owner} references missing cluster {cluster!r}")
        return problems


def _to_entry(
    type_url: str, name: str, item: Message | ResourceEntry, interner: ResourceInterner | None
) -> ResourceEntry:
    if isinstance(item, ResourceEntry):
        if item.type_url != type_url or item.name != name:
            raise ValueError(f"entry {item.type_url}/{item.name} listed as {type_url}/{name}")
        return item
    if interner is not None:
        return interner.entry(type_url, name, item)
    return ResourceEntry.create(type_url, name, item)


def _name_problems(snapshot: Snapshot, changed: Collection[str] | None) -> list[str]:
    problems = []
    for type_url, group in snapshot.types.items():
        if changed is not None and type_url not in changed:
            continue
        for name, entry in group.entries.items():
            own = entry.facts.own_name
            if own is not None and own != name:
                problems.append(f"{type_url} resource listed as {name!r} is named {own!r}")
    return problems


def _rds_references(listeners: Mapping[str, ResourceEntry]) -> Iterator[tuple[str, str]]:
    for name, entry in listeners.items():
        for route_config_name in entry.facts.rds_names:
            yield name, route_config_name


def _cluster_references(snapshot: Snapshot, listeners: bool, routes: bool) -> Iterator[tuple[str, str]]:
    if listeners:
        for name, entry in snapshot.resources(types.LISTENER_TYPE).items():
            for cluster in entry.facts.cluster_refs:
                yield f"listener {name!r}", cluster
    if routes:
        for name, entry in snapshot.resources(types.ROUTE_TYPE).items():
            for cluster in entry.facts.cluster_refs:
                yield f"route config {name!r}", cluster
