"""ResourceSet: what a generator returns, and what a whole snapshot is made of.

A mapping type URL → {name → message}, holding each resource as its (already serialised, shared)
`ResourceEntry`; `entries()` hands those to `Snapshot.build` as they are. `listeners` notes what was
decided per listener (traced, and why not), for inspection. Iteration is deterministic (types
in ADS order, names sorted). Adding a second, different resource under an existing name is a generator
bug and raises, rather than letting the last writer silently win.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from types import MappingProxyType

from google.protobuf.message import Message

from controlplane.xds import types
from controlplane.xds.entries import ResourceEntry, type_and_name
from controlplane.xds.generate.notes import ListenerNote

_NONE: Mapping[str, ResourceEntry] = MappingProxyType({})


def merge_type(sets: Iterable[ResourceSet], type_url: str) -> dict[str, ResourceEntry]:
    """name → entry of one type across `sets`; raises DuplicateResourceError when two sets hold different
    resources under one name (identical ones are one resource: two concerns may share a cluster)."""
    merged: dict[str, ResourceEntry] = {}
    for resources in sets:
        theirs = resources.type_entries(type_url)
        if not merged:
            merged.update(theirs)
            continue
        for name, entry in theirs.items():
            existing = merged.get(name)
            if existing is not None and existing is not entry and existing.value != entry.value:
                raise DuplicateResourceError(
                    f"two different {entry.message.DESCRIPTOR.name} resources named {entry.name!r}")
            merged[name] = entry
    return merged


class DuplicateResourceError(ValueError):
    """Two different resources claimed the same (type, name)."""


class ResourceSet(Mapping[str, Mapping[str, Message]]):
    """Resources of one proxy (or one generator's share of them), keyed by type URL then name."""

    __slots__ = ("_by_type", "listeners")

    def __init__(self) -> None:
        self._by_type: dict[str, dict[str, ResourceEntry]] = {}
        self.listeners: tuple[ListenerNote, ...] = ()
        """What was decided per listener, in generation order (for inspection)."""

    def add(self, *resources: ResourceEntry | Message) -> ResourceSet:
        """Add resources (entries, or messages that are serialised here); an identical duplicate is accepted
        (two outbounds to one service share a cluster)."""
        for resource in resources:
            if isinstance(resource, Message):
                resource = ResourceEntry.create(*type_and_name(resource), resource)
            self._put(resource)
        return self

    def note(self, note: ListenerNote) -> ResourceSet:
        self.listeners += (note,)
        return self

    def merge(self, other: ResourceSet) -> ResourceSet:
        self.listeners += other.listeners
        for type_url, theirs in other._by_type.items():
            mine = self._by_type.get(type_url)
            if mine is None:
                self._by_type[type_url] = dict(theirs)
                continue
            for name in mine.keys() & theirs.keys():
                self._put(theirs[name])  # raises on a different resource under the same name
            mine.update(theirs)
        return self

    def type_entries(self, type_url: str) -> Mapping[str, ResourceEntry]:
        """name → entry of one type ({} when the set has none)."""
        return self._by_type.get(type_url, _NONE)

    def _put(self, entry: ResourceEntry) -> None:
        by_name = self._by_type.setdefault(entry.type_url, {})
        existing = by_name.get(entry.name)
        if existing is not None and existing is not entry and existing.value != entry.value:
            raise DuplicateResourceError(
                f"two different {entry.message.DESCRIPTOR.name} resources named {entry.name!r}")
        by_name[entry.name] = entry

    def entries(self) -> Mapping[str, Mapping[str, ResourceEntry]]:
        """type URL → name → entry, for `Snapshot.build` (no copy of the entries)."""
        return self._by_type

    def __getitem__(self, type_url: str) -> Mapping[str, Message]:
        by_name = self._by_type[type_url]
        return MappingProxyType({name: by_name[name].message for name in sorted(by_name)})

    def __iter__(self) -> Iterator[str]:
        known = [type_url for type_url in types.ADS_ORDER if type_url in self._by_type]
        others = sorted(type_url for type_url in self._by_type if type_url not in types.ADS_ORDER)
        return iter(known + others)

    def __len__(self) -> int:
        return len(self._by_type)

    def names(self, type_url: str) -> tuple[str, ...]:
        return tuple(sorted(self._by_type.get(type_url, ())))

    def __repr__(self) -> str:
        counts = ", ".join(
            f"{type_url.rsplit('.', 1)[-1]}={len(self._by_type[type_url])}" for type_url in self
        )
        return f"ResourceSet({counts})"
