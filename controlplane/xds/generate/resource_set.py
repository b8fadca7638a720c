"""ResourceSet: what a generator returns, and what a whole snapshot is made of.

A mapping type URL → {name → message}. Iteration is deterministic (types in ADS order, names sorted) so the
cache can hash and serialise without re-sorting. Adding a second, different message under an existing name
is a generator bug and raises, rather than letting the last writer silently win.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Final

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_pb2
from google.protobuf.message import Message

from controlplane.xds import types


class DuplicateResourceError(ValueError):
    """Two different messages claimed the same (type, name)."""


# Resource classes → (type URL, name field). A dict lookup by class keeps `add` cheap on the hot path.
_KNOWN: Final[Mapping[type[Message], tuple[str, str]]] = {
    cluster_pb2.Cluster: (types.CLUSTER_TYPE, "name"),
    endpoint_pb2.ClusterLoadAssignment: (types.ENDPOINT_TYPE, "cluster_name"),
    listener_pb2.Listener: (types.LISTENER_TYPE, "name"),
    route_pb2.RouteConfiguration: (types.ROUTE_TYPE, "name"),
}


def type_url_of(message: Message) -> str:
    known = _KNOWN.get(type(message))
    return known[0] if known else f"type.googleapis.com/{message.DESCRIPTOR.full_name}"


def resource_name(message: Message) -> str:
    """xDS name of a resource; ClusterLoadAssignment is named by its cluster, the rest by `name`."""
    known = _KNOWN.get(type(message))
    if known is None:
        raise TypeError(f"not an xDS resource: {message.DESCRIPTOR.full_name}")
    return str(getattr(message, known[1]))


class ResourceSet(Mapping[str, Mapping[str, Message]]):
    """Resources of one proxy (or one generator's share of them), keyed by type URL then name."""

    __slots__ = ("_by_type",)

    def __init__(self) -> None:
        self._by_type: dict[str, dict[str, Message]] = {}

    def add(self, *messages: Message) -> ResourceSet:
        """Add resources; an identical duplicate is accepted (two outbounds to one service share a cluster)."""
        for message in messages:
            known = _KNOWN.get(type(message))
            if known is None:
                resource_name(message)  # raises TypeError: not an xDS resource type we know
                continue
            self._put(known[0], str(getattr(message, known[1])), message)
        return self

    def merge(self, other: ResourceSet) -> ResourceSet:
        for type_url, theirs in other._by_type.items():
            mine = self._by_type.get(type_url)
            if mine is None:
                self._by_type[type_url] = dict(theirs)
                continue
            for name in mine.keys() & theirs.keys():
                self._put(type_url, name, theirs[name])  # raises on a different message under the same name
            mine.update(theirs)
        return self

    def _put(self, type_url: str, name: str, message: Message) -> None:
        by_name = self._by_type.setdefault(type_url, {})
        existing = by_name.get(name)
        if existing is not None and existing is not message and existing != message:
            raise DuplicateResourceError(f"two different {message.DESCRIPTOR.name} resources named {name!r}")
        by_name[name] = message

    def __getitem__(self, type_url: str) -> Mapping[str, Message]:
        by_name = self._by_type[type_url]
        return MappingProxyType({name: by_name[name] for name in sorted(by_name)})

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
