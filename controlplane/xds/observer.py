"""Hooks into ADS streams, and the per-node xDS status built from them.

Responsible for the `StreamObserver` seam (metrics, status API, `inspect`) and `StatusRegistry`, the
observer that remembers, for every connected node and type, the version sent, the version ACKed and the
last NACK (it feeds `GET /meshes/{mesh}/dataplanes/{name}/xds`). Hooks run synchronously on the stream's
task: they must not block or raise; an exception from a hook ends that stream. Must not: influence what is
sent (that is the cache's and stream state's job).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Protocol

from controlplane.xds.envoy_version import EnvoyVersion
from controlplane.xds.stream_state import RequestKind, Variant


class StreamObserver(Protocol):
    """Called by the ADS server on stream events; synchronous and non-blocking."""

    def on_stream_open(self, stream_id: int, node_id: str, variant: Variant,
                       envoy_version: EnvoyVersion | None = None) -> None: ...

    def on_request(self, stream_id: int, node_id: str, type_url: str, kind: RequestKind, version: str,
                   nonce: str, error_message: str) -> None: ...

    def on_response(self, stream_id: int, node_id: str, type_url: str, version: str, nonce: str,
                    n_resources: int, n_bytes: int) -> None: ...

    def on_stream_close(self, stream_id: int, node_id: str) -> None: ...


class NoopObserver:
    """The default observer: does nothing."""

    def on_stream_open(self, stream_id: int, node_id: str, variant: Variant,
                       envoy_version: EnvoyVersion | None = None) -> None:
        pass

    def on_request(self, stream_id: int, node_id: str, type_url: str, kind: RequestKind, version: str,
                   nonce: str, error_message: str) -> None:
        pass

    def on_response(self, stream_id: int, node_id: str, type_url: str, version: str, nonce: str,
                    n_resources: int, n_bytes: int) -> None:
        pass

    def on_stream_close(self, stream_id: int, node_id: str) -> None:
        pass


class CompositeObserver:
    """Fans every event out to several observers, in order."""

    def __init__(self, observers: Iterable[StreamObserver]) -> None:
        self._observers = tuple(observers)

    def on_stream_open(self, stream_id: int, node_id: str, variant: Variant,
                       envoy_version: EnvoyVersion | None = None) -> None:
        for observer in self._observers:
            observer.on_stream_open(stream_id, node_id, variant, envoy_version)

    def on_request(self, stream_id: int, node_id: str, type_url: str, kind: RequestKind, version: str,
                   nonce: str, error_message: str) -> None:
        for observer in self._observers:
            observer.on_request(stream_id, node_id, type_url, kind, version, nonce, error_message)

    def on_response(self, stream_id: int, node_id: str, type_url: str, version: str, nonce: str,
                    n_resources: int, n_bytes: int) -> None:
        for observer in self._observers:
            observer.on_response(stream_id, node_id, type_url, version, nonce, n_resources, n_bytes)

    def on_stream_close(self, stream_id: int, node_id: str) -> None:
        for observer in self._observers:
            observer.on_stream_close(stream_id, node_id)


@dataclass(slots=True)
class TypeStatus:
    """xDS state of one type on one stream, as the status API shows it.

    Mutable: the registry updates its own instances in place on every request and response (a frozen
    dataclass `replace` per event cost ≈ 6 µs, 4 000 times per mesh-wide push at 1 000 proxies) and hands
    out copies, so what a caller holds never changes under it.
    """

    type_url: str
    version_sent: str = ""
    nonce_sent: str = ""
    version_acked: str = ""
    nack_version: str = ""
    nack_message: str = ""
    responses_sent: int = 0
    nacks: int = 0


@dataclass(frozen=True, slots=True)
class StreamStatus:
    stream_id: int
    node_id: str
    variant: Variant
    envoy_version: EnvoyVersion | None = None


@dataclass(frozen=True, slots=True)
class NodeStatus:
    """Status of a connected node: its newest stream's per-type state, plus all its open stream ids
    (more than one while an Envoy reconnects or when two proxies wrongly share an id)."""

    node_id: str
    variant: Variant
    stream_ids: tuple[int, ...]
    types: Mapping[str, TypeStatus]
    envoy_version: EnvoyVersion | None = None
    """What the newest stream's Envoy reported (envoy_version.py); None for other clients or when unsaid."""


class StatusRegistry(NoopObserver):
    """Observer that keeps `NodeStatus` for connected nodes; loop-thread only, O(1) per event."""

    def __init__(self) -> None:
        self._streams: dict[int, StreamStatus] = {}
        self._types: dict[int, dict[str, TypeStatus]] = {}

    def on_stream_open(self, stream_id: int, node_id: str, variant: Variant,
                       envoy_version: EnvoyVersion | None = None) -> None:
        self._streams[stream_id] = StreamStatus(stream_id, node_id, variant, envoy_version)
        self._types[stream_id] = {}

    def on_request(self, stream_id: int, node_id: str, type_url: str, kind: RequestKind, version: str,
                   nonce: str, error_message: str) -> None:
        if kind == "stale":
            return
        status = self._type(stream_id, type_url)
        if status is None:
            return
        if kind == "nack":
            status.nack_version, status.nack_message = version, error_message
            status.nacks += 1
        elif version:
            status.version_acked = version

    def on_response(self, stream_id: int, node_id: str, type_url: str, version: str, nonce: str,
                    n_resources: int, n_bytes: int) -> None:
        status = self._type(stream_id, type_url)
        if status is not None:
            status.version_sent, status.nonce_sent = version, nonce
            status.responses_sent += 1

    def on_stream_close(self, stream_id: int, node_id: str) -> None:
        self._streams.pop(stream_id, None)
        self._types.pop(stream_id, None)

    def _type(self, stream_id: int, type_url: str) -> TypeStatus | None:
        by_type = self._types.get(stream_id)
        if by_type is None:
            return None
        status = by_type.get(type_url)
        if status is None:
            status = by_type[type_url] = TypeStatus(type_url)
        return status

    def stream_count(self) -> int:
        """Open streams (all nodes)."""
        return len(self._streams)

    def connected_nodes(self) -> list[str]:
        """Node ids with at least one open stream, sorted."""
        return sorted({stream.node_id for stream in self._streams.values()})

    def connected_versions(self) -> dict[str, EnvoyVersion | None]:
        """Node id → the Envoy version its newest open stream reported; one pass over the streams, for
        fleet-wide views (mesh insights) that would be O(nodes × streams) through `status()`."""
        newest: dict[str, StreamStatus] = {}
        for stream in self._streams.values():
            seen = newest.get(stream.node_id)
            if seen is None or stream.stream_id > seen.stream_id:
                newest[stream.node_id] = stream
        return {node: stream.envoy_version for node, stream in newest.items()}

    def status(self, node_id: str) -> NodeStatus | None:
        """Status of `node_id`'s newest stream, or None when the node is not connected."""
        stream_ids = tuple(sorted(sid for sid, s in self._streams.items() if s.node_id == node_id))
        if not stream_ids:
            return None
        newest = self._streams[stream_ids[-1]]
        types = MappingProxyType({url: copy.copy(c) for url, c in sorted(self._types[newest.stream_id].items())})
        return NodeStatus(node_id=node_id, variant=newest.variant, stream_ids=stream_ids, types=types,
                          envoy_version=newest.envoy_version)
