"""Hooks into ADS streams, and the per-node xDS status built from them.

Responsible for the `StreamObserver` seam (metrics, status API, `inspect`) and `StatusRegistry`, the
observer that remembers, for every node and type, the version sent, the version ACKed and the last NACK
(it feeds `GET /meshes/{mesh}/dataplanes/{name}/xds`), and each node's recent subscriptions (one per ADS
stream: connect and disconnect time, responses sent / ACKed / NACKed per type), which is Kuma's
`dataplaneInsight.subscriptions` (`GET /meshes/{mesh}/dataplanes+insights`). Hooks run synchronously on the
stream's task: they must not block or raise; an exception from a hook ends that stream. Must not: influence
what is sent (that is the cache's and stream state's job).

Bounded memory: a node keeps its last `SUBSCRIPTION_HISTORY` subscriptions (Kuma's subscription limit), and
at most `MAX_OFFLINE_NODES` nodes without an open stream are remembered (the longest-offline is forgotten
first), so proxies that come and go for months cannot grow the registry.
"""

from __future__ import annotations

import copy
import os
import socket
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final, Protocol

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


SUBSCRIPTION_HISTORY: Final = 5
"""Subscriptions kept per node, newest last (open ones included)."""
MAX_OFFLINE_NODES: Final = 10_000
"""Nodes without an open stream whose last subscriptions are still shown (Offline in `inspect dataplanes`)."""


def default_instance_id() -> str:
    """This control plane's id in `controlPlaneInstanceId`: host name and pid, unique among replicas."""
    return f"{socket.gethostname()}-{os.getpid()}"


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
    acks: int = 0


@dataclass(slots=True)
class _Subscription:
    """One ADS stream of a node, updated in place by the hooks (loop thread only)."""

    stream_id: int
    node_id: str
    variant: Variant
    envoy_version: EnvoyVersion | None
    connect_time: float
    last_update_time: float
    disconnect_time: float | None = None
    types: dict[str, TypeStatus] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SubscriptionStatus:
    """A copy of one subscription (Kuma's `DiscoverySubscription`); times are Unix seconds."""

    id: str
    control_plane_instance_id: str
    variant: Variant
    connect_time: float
    last_update_time: float
    disconnect_time: float | None
    envoy_version: EnvoyVersion | None
    types: Mapping[str, TypeStatus]

    @property
    def online(self) -> bool:
        return self.disconnect_time is None

    @property
    def responses_sent(self) -> int:
        return sum(t.responses_sent for t in self.types.values())

    @property
    def responses_rejected(self) -> int:
        return sum(t.nacks for t in self.types.values())

    @property
    def responses_acknowledged(self) -> int:
        return sum(t.acks for t in self.types.values())


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
    """Observer that keeps `NodeStatus` for connected nodes and recent subscriptions for every node;
    loop-thread only, O(1) per event."""

    def __init__(self, instance_id: str = "", *, clock: Callable[[], float] = time.time,
                 history: int = SUBSCRIPTION_HISTORY, max_offline: int = MAX_OFFLINE_NODES) -> None:
        self.instance_id = instance_id or default_instance_id()
        self._clock = clock
        self._history = history
        self._max_offline = max_offline
        self._streams: dict[int, _Subscription] = {}
        self._open: dict[str, set[int]] = {}
        """Node id → its open stream ids."""
        self._nodes: dict[str, deque[_Subscription]] = {}
        """Node id → its last subscriptions, oldest first."""
        self._offline: OrderedDict[str, None] = OrderedDict()
        """Nodes with history but no open stream, longest offline first."""

    def on_stream_open(self, stream_id: int, node_id: str, variant: Variant,
                       envoy_version: EnvoyVersion | None = None) -> None:
        now = self._clock()
        subscription = _Subscription(stream_id, node_id, variant, envoy_version, now, now)
        self._streams[stream_id] = subscription
        self._open.setdefault(node_id, set()).add(stream_id)
        self._offline.pop(node_id, None)
        history = self._nodes.get(node_id)
        if history is None:
            history = self._nodes[node_id] = deque(maxlen=self._history)
        history.append(subscription)

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
        elif kind == "ack":
            status.version_acked = version
            status.acks += 1
        elif version:  # a first request carrying a version: what the node held from an earlier stream
            status.version_acked = version

    def on_response(self, stream_id: int, node_id: str, type_url: str, version: str, nonce: str,
                    n_resources: int, n_bytes: int) -> None:
        status = self._type(stream_id, type_url)
        if status is not None:
            status.version_sent, status.nonce_sent = version, nonce
            status.responses_sent += 1

    def on_stream_close(self, stream_id: int, node_id: str) -> None:
        subscription = self._streams.pop(stream_id, None)
        if subscription is None:
            return
        subscription.disconnect_time = subscription.last_update_time = self._clock()
        open_ids = self._open.get(subscription.node_id)
        if open_ids is not None:
            open_ids.discard(stream_id)
            if not open_ids:
                del self._open[subscription.node_id]
                self._went_offline(subscription.node_id)

    def _went_offline(self, node_id: str) -> None:
        self._offline[node_id] = None
        while len(self._offline) > self._max_offline:
            forgotten, _ = self._offline.popitem(last=False)
            self._nodes.pop(forgotten, None)

    def _type(self, stream_id: int, type_url: str) -> TypeStatus | None:
        subscription = self._streams.get(stream_id)
        if subscription is None:
            return None
        subscription.last_update_time = self._clock()
        status = subscription.types.get(type_url)
        if status is None:
            status = subscription.types[type_url] = TypeStatus(type_url)
        return status

    def stream_count(self) -> int:
        """Open streams (all nodes)."""
        return len(self._streams)

    def connected_nodes(self) -> list[str]:
        """Node ids with at least one open stream, sorted."""
        return sorted(self._open)

    def is_connected(self, node_id: str) -> bool:
        return node_id in self._open

    def connected_versions(self) -> dict[str, EnvoyVersion | None]:
        """Node id → the Envoy version its newest open stream reported; one pass over the streams, for
        fleet-wide views (mesh insights) that would be O(nodes × streams) through `status()`."""
        newest: dict[str, _Subscription] = {}
        for stream in self._streams.values():
            seen = newest.get(stream.node_id)
            if seen is None or stream.stream_id > seen.stream_id:
                newest[stream.node_id] = stream
        return {node: stream.envoy_version for node, stream in newest.items()}

    def status(self, node_id: str) -> NodeStatus | None:
        """Status of `node_id`'s newest stream, or None when the node is not connected."""
        stream_ids = tuple(sorted(self._open.get(node_id, ())))
        if not stream_ids:
            return None
        newest = self._streams[stream_ids[-1]]
        types = MappingProxyType({url: copy.copy(c) for url, c in sorted(newest.types.items())})
        return NodeStatus(node_id=node_id, variant=newest.variant, stream_ids=stream_ids, types=types,
                          envoy_version=newest.envoy_version)

    def subscriptions(self, node_id: str) -> tuple[SubscriptionStatus, ...]:
        """The node's last subscriptions, oldest first (copies); () for a node never seen or forgotten."""
        return tuple(self._copy(s) for s in self._nodes.get(node_id, ()))

    def first_connect_time(self, node_id: str) -> float | None:
        """When the node's oldest open stream connected; None when it is not connected."""
        open_ids = self._open.get(node_id)
        return min(self._streams[i].connect_time for i in open_ids) if open_ids else None

    def _copy(self, s: _Subscription) -> SubscriptionStatus:
        types = MappingProxyType({url: copy.copy(t) for url, t in sorted(s.types.items())})
        return SubscriptionStatus(str(s.stream_id), self.instance_id, s.variant, s.connect_time,
                                  s.last_update_time, s.disconnect_time, s.envoy_version, types)
