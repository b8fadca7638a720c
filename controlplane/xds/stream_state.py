"""Per-stream, per-type protocol state and the State-of-the-World (SotW) transitions.

Responsible for deciding, from requests and snapshots alone, what a SotW ADS stream must send: it keeps one
`TypeState` per type URL (subscription, nonce/version sent, version ACKed, NACK) and returns the
`DiscoveryResponse`s to write, in ADS order. Pure: no gRPC, no asyncio, no clock, no logging, so every rule
is unit-tested directly (tests/unit/xds/test_sotw_state.py, test_delta_state.py). The servicer (server.py)
only feeds requests in and writes what comes out. Delta transitions live in delta.py and share `StreamState`
and the common `TypeState` fields; each variant keeps its own per-type extras (`SotwTypeState`,
`DeltaTypeState`), so a field means one thing. What a
client may make one stream hold is bounded here too (`StreamLimits`, limits.py), before a request's lists
are copied into the state.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Final, Generic, Literal, TypeVar

from envoy.service.discovery.v3 import discovery_pb2
from google.protobuf import any_pb2

from controlplane.xds import types, wire
from controlplane.xds.limits import DEFAULT_LIMITS, StreamLimits, client_text
from controlplane.xds.snapshot import ResourceEntry, Snapshot
from controlplane.xds.subscription import Subscription

RequestKind = Literal["initial", "ack", "nack", "stale"]
Variant = Literal["sotw", "delta"]

_RECENT_NONCES: Final = 16

T = TypeVar("T", bound="TypeState")


@dataclass(frozen=True, slots=True)
class SotwResponse:
    """A `DiscoveryResponse` the stream owes, as decided; `encode()` gives its wire bytes.

    Not a protobuf message: the resources are the snapshot's shared entries, whose encoded bytes are
    concatenated with the per-stream fields (wire.py), so nothing is copied or re-serialised per stream.
    """

    type_url: str
    version_info: str
    nonce: str
    entries: tuple[ResourceEntry, ...]

    @property
    def version(self) -> str:
        return self.version_info

    @property
    def n_resources(self) -> int:
        return len(self.entries)

    @property
    def resources(self) -> list[any_pb2.Any]:
        """The packed resources, as the message would hold them (tests, inspection)."""
        return [entry.packed for entry in self.entries]

    def encode(self) -> bytes:
        return wire.sotw_response(self.version_info, (e.sotw_item for e in self.entries), self.type_url,
                                  self.nonce)

    def message(self) -> discovery_pb2.DiscoveryResponse:
        """The equivalent protobuf message (tests, debugging); the server writes `encode()`."""
        return discovery_pb2.DiscoveryResponse.FromString(self.encode())


class ProtocolViolation(Exception):
    """The client broke the protocol; the server closes the stream with INVALID_ARGUMENT."""


@dataclass(frozen=True, slots=True)
class RequestEvent:
    """What a request meant, for observers and logs. `version` is the version the request is about: the
    client's version for initial/ack/stale, the rejected version for a NACK ("" when unknown)."""

    type_url: str
    kind: RequestKind
    version: str
    nonce: str
    error_message: str = ""


@dataclass(slots=True)
class TypeState:
    """Protocol state of one type URL on one stream (each type is its own sub-stream on ADS, §1.1), as both
    variants keep it. What differs between them lives in `SotwTypeState` and `DeltaTypeState`."""

    type_url: str
    subscription: Subscription = field(default_factory=Subscription)
    nonce_sent: str = ""
    version_sent: str = ""
    version_acked: str = ""
    nacked: bool = False
    """The last response sent for this type was NACKed: its version is not sent again (§1.4)."""
    nack_version: str = ""
    nack_message: str = ""
    versions_by_nonce: dict[str, str] = field(default_factory=dict)
    """The type version each of the last few nonces carried: a delta ACK/NACK names only its nonce."""

    def record_sent(self, nonce: str, version: str) -> None:
        self.nonce_sent = nonce
        self.version_sent = version
        self.nacked = False
        self.versions_by_nonce[nonce] = version
        while len(self.versions_by_nonce) > _RECENT_NONCES:
            del self.versions_by_nonce[next(iter(self.versions_by_nonce))]

    def record_nack(self, version: str, message: str) -> None:
        self.nacked = True
        self.nack_version = version
        self.nack_message = message


@dataclass(slots=True)
class SotwTypeState(TypeState):
    """A SotW type: every response is the full selection, so the state remembers the last one."""

    last_response: dict[str, str] = field(default_factory=dict)
    """Name → resource version in the last response (what a grown subscription is compared against)."""
    resend_all: bool = False
    """EDS: a CDS response changed EDS clusters, so answer even at the same version (§1.10)."""
    subscription_changed: bool = False
    """The subscription changed since the last response, so names may be owed at the same version."""


@dataclass(slots=True)
class DeltaTypeState(TypeState):
    """A delta type: responses carry only differences, so the state tracks what the client holds."""

    held: dict[str, str] = field(default_factory=dict)
    """Name → version the client holds: its initial_resource_versions, then everything sent and not removed."""
    resend: set[str] = field(default_factory=set)
    """Names to push even though the client holds that version (EDS after a cluster change)."""
    reported_missing: set[str] = field(default_factory=set)
    """Explicitly subscribed names already reported in removed_resources (§1.8)."""
    unsub_answer: set[str] = field(default_factory=set)
    """Wildcard + explicit name unsubscribed; the client must hear about it (§1.11)."""


class StreamState(Generic[T]):
    """State shared by both variants: the type states, the stream's nonce counter and its limits."""

    _type_state: type[T]
    """The variant's per-type state class (SotwTypeState or DeltaTypeState)."""

    def __init__(self, limits: StreamLimits = DEFAULT_LIMITS) -> None:
        self.types: dict[str, T] = {}
        self.limits = limits
        self._last_nonce = 0

    def next_nonce(self) -> str:
        """Nonces are a per-stream decimal counter, as in go-control-plane (STYLE §1)."""
        self._last_nonce += 1
        return str(self._last_nonce)

    def type_state(self, type_url: str) -> T:
        if not type_url:
            # ADS multiplexes types, so a request without type_url is meaningless ("Resource Types", §1.2).
            raise ProtocolViolation("type_url must be set on every ADS request")
        state = self.types.get(type_url)
        if state is None:
            self.limits.check_type_url(type_url, len(self.types))
            state = self.types[type_url] = self._type_state(type_url)
        return state

    def check_subscription(self, state: TypeState, subscription: Subscription) -> None:
        """Raise LimitExceeded if giving `state` this subscription would take the stream over its limits."""
        names, chars = len(subscription.names), subscription.name_chars
        for other in self.types.values():
            if other is not state:
                names += len(other.subscription.names)
                chars += other.subscription.name_chars
        self.limits.check_subscribed(names, chars)

    def ordered_types(self) -> Iterator[T]:
        """Requested types in ADS order CDS → EDS → LDS → RDS, then any others by URL (§1.10)."""
        for type_url in (*types.ADS_ORDER, *sorted(set(self.types) - set(types.ADS_ORDER))):
            state = self.types.get(type_url)
            if state is not None and state.subscription.requested:
                yield state

    def changed_eds_names(self, sent_before: dict[str, str], clusters: list[ResourceEntry],
                          snapshot: Snapshot) -> set[str]:
        """EDS names of clusters that a CDS response adds or changes (they will warm and need their CLA)."""
        return {
            snapshot.eds_names[entry.name]
            for entry in clusters
            if entry.name in snapshot.eds_names and sent_before.get(entry.name) != entry.version
        }


def selected_entries(state: TypeState, snapshot: Snapshot) -> dict[str, ResourceEntry]:
    """Resources of the snapshot the subscription selects (all of them for a wildcard)."""
    available = snapshot.resources(state.type_url)
    if state.subscription.wildcard:
        return dict(available)
    return {name: available[name] for name in sorted(state.subscription.names) if name in available}


class SotwState(StreamState[SotwTypeState]):
    """SotW ADS stream: full resource lists per request, one type version per response."""

    _type_state = SotwTypeState

    def on_request(self, request: discovery_pb2.DiscoveryRequest) -> RequestEvent:
        state = self.type_state(request.type_url)
        nonce = str(request.response_nonce)
        if state.nonce_sent and nonce != state.nonce_sent:
            # "When to send an update" (§1.5): a request with a stale nonce is superseded; ignore it
            # entirely, subscription included (go-control-plane does the same).
            return RequestEvent(state.type_url, "stale", client_text(str(request.version_info)), nonce)
        first = not state.subscription.requested
        self.limits.check_request_list("resource_names", request.resource_names, state.type_url)
        subscription = state.subscription.apply_sotw(request.resource_names)
        self.check_subscription(state, subscription)
        if subscription != state.subscription:
            state.subscription, state.subscription_changed = subscription, True
            # §1.6: a name dropped from the list is forgotten by the client; if it is requested again it must
            # be re-sent even though neither it nor the type version changed.
            state.last_response = {name: v for name, v in state.last_response.items() if subscription.selects(name)}
        state.version_acked = client_text(str(request.version_info))
        if request.HasField("error_detail"):
            # "ACK/NACK" (§1.4): error_detail is the NACK signal; remember it so the same version is not
            # re-sent to this stream until the snapshot changes.
            message = client_text(str(request.error_detail.message))
            state.record_nack(state.version_sent, message)
            return RequestEvent(state.type_url, "nack", state.version_sent, nonce, message)
        kind: RequestKind = "initial" if first else "ack"
        return RequestEvent(state.type_url, kind, state.version_acked, nonce)

    def responses(self, snapshot: Snapshot) -> list[SotwResponse]:
        """Responses owed to the client for `snapshot`, in ADS order; updates the state as sent."""
        out = []
        for state in self.ordered_types():
            selected = self._owed(state, snapshot)
            if selected is not None:
                out.append(self._respond(state, snapshot, selected))
        return out

    @staticmethod
    def _owed(state: SotwTypeState, snapshot: Snapshot) -> dict[str, ResourceEntry] | None:
        """The resources the client is owed for this type now (the selection to send), or None when nothing is.

        The common case, an ACK of the current version, is decided without building the selected set.
        """
        if not state.nonce_sent or snapshot.version(state.type_url) != state.version_sent:
            # A new version, or the first request for the type: always answer, even with zero resources,
            # or Envoy's initialisation waits for initial_fetch_timeout (§1.10).
            return selected_entries(state, snapshot)
        if state.nacked:
            # §1.4: never re-send a NACKed version; wait for the snapshot to change.
            return None
        if not (state.resend_all or state.subscription_changed):
            # "Never respond to a plain ACK" (§1.5): same version, same subscription, nothing missing.
            return None
        selected = selected_entries(state, snapshot)
        # §1.6: the subscription grew; newly requested names that exist must be sent.
        if state.resend_all or any(name not in state.last_response for name in selected):
            return selected
        return None

    def _respond(self, state: SotwTypeState, snapshot: Snapshot,
                 selected: dict[str, ResourceEntry]) -> SotwResponse:
        # §1.7: CDS and LDS are full-state (every selected resource); EDS/RDS get only what was requested
        # (or everything for a wildcard) - selected_entries gives exactly that for every type.
        version = snapshot.version(state.type_url)
        nonce = self.next_nonce()
        response = SotwResponse(state.type_url, version, nonce, tuple(selected.values()))
        if state.type_url == types.CLUSTER_TYPE:
            self._flag_eds_resend(state, snapshot, selected)
        state.last_response = {name: entry.version for name, entry in selected.items()}
        state.resend_all = state.subscription_changed = False
        state.record_sent(nonce, version)
        return response

    def _flag_eds_resend(self, cds: SotwTypeState, snapshot: Snapshot, selected: dict[str, ResourceEntry]) -> None:
        # §1.10: Envoy re-sends an identical EDS request after a cluster change and needs an answer, or the
        # cluster stays warming; make EDS respond next time even at the same version.
        eds = self.types.get(types.ENDPOINT_TYPE)
        if eds is not None and self.changed_eds_names(cds.last_response, list(selected.values()), snapshot):
            eds.resend_all = True
