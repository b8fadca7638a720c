"""Incremental (delta) ADS transitions: per-resource versions, explicit removals, subscription increments.

Responsible for deciding what a delta stream must send ("Incremental xDS", reference/xds-protocol.md §1.9,
§1.11): only resources whose version differs from what the client holds, `removed_resources` for deleted
and for subscribed-but-missing names, re-sends on re-subscribe, and the CLA push after a cluster change
(Envoy sends no EDS request in delta, §1.10). Pure like stream_state.py: no gRPC, asyncio or logging.
"""

from __future__ import annotations

from dataclasses import dataclass

from envoy.service.discovery.v3 import discovery_pb2

from controlplane.xds import types, wire
from controlplane.xds.limits import client_text
from controlplane.xds.snapshot import ResourceEntry, Snapshot
from controlplane.xds.stream_state import (
    DeltaTypeState,
    RequestEvent,
    RequestKind,
    StreamState,
    selected_entries,
)
from controlplane.xds.subscription import WILDCARD


@dataclass(frozen=True, slots=True)
class DeltaResponse:
    """A `DeltaDiscoveryResponse` the stream owes; `encode()` joins the entries' shared encoded bytes."""

    type_url: str
    system_version_info: str
    nonce: str
    entries: tuple[ResourceEntry, ...]
    removed_resources: tuple[str, ...]

    @property
    def version(self) -> str:
        return self.system_version_info

    @property
    def n_resources(self) -> int:
        return len(self.entries)

    @property
    def resources(self) -> list[discovery_pb2.Resource]:
        """The resources as the message would hold them (tests, inspection)."""
        return [discovery_pb2.Resource(name=e.name, version=e.version, resource=e.packed) for e in self.entries]

    def encode(self) -> bytes:
        return wire.delta_response(self.system_version_info, (e.delta_item for e in self.entries),
                                   self.type_url, self.nonce, self.removed_resources)

    def message(self) -> discovery_pb2.DeltaDiscoveryResponse:
        """The equivalent protobuf message (tests, debugging); the server writes `encode()`."""
        return discovery_pb2.DeltaDiscoveryResponse.FromString(self.encode())


class DeltaState(StreamState[DeltaTypeState]):
    """Delta ADS stream: each type tracks what the client holds (`DeltaTypeState.held`)."""

    _type_state = DeltaTypeState

    def on_request(self, request: discovery_pb2.DeltaDiscoveryRequest) -> RequestEvent:
        state = self.type_state(request.type_url)
        first = not state.subscription.requested
        nonce = str(request.response_nonce)
        # "Incremental xDS" (§1.5): subscription changes are honoured even when the nonce is stale; the
        # nonce only correlates ACK/NACK.
        self._apply_subscription(state, request, first)
        version = state.versions_by_nonce.get(nonce, "")
        if request.HasField("error_detail"):
            # §1.4: record the NACK. `held` already has what we sent, so nothing is re-sent until it
            # changes in the snapshot.
            message = client_text(str(request.error_detail.message))
            state.record_nack(version, message)
            return RequestEvent(state.type_url, "nack", version, nonce, message)
        kind: RequestKind
        if first:
            kind = "initial"
        elif nonce and nonce != state.nonce_sent:
            kind = "stale"
        else:
            kind = "ack"
            if nonce:
                state.version_acked = version
        return RequestEvent(state.type_url, kind, version, nonce)

    def _apply_subscription(self, state: DeltaTypeState, request: discovery_pb2.DeltaDiscoveryRequest,
                            first: bool) -> None:
        # Sizes are checked before anything is copied out of the request (limits.py).
        self.limits.check_request_list("resource_names_subscribe", request.resource_names_subscribe,
                                       state.type_url)
        self.limits.check_request_list("resource_names_unsubscribe", request.resource_names_unsubscribe,
                                       state.type_url)
        if first:
            self.limits.check_request_list("initial_resource_versions", request.initial_resource_versions,
                                           state.type_url)
        subscribe = [str(name) for name in request.resource_names_subscribe]
        unsubscribe = [str(name) for name in request.resource_names_unsubscribe]
        before = state.subscription
        after = before.apply_delta(subscribe, unsubscribe)
        self.check_subscription(state, after)
        state.subscription = after
        if first:
            # §1.9: the first request lists what the client already holds; resources whose version
            # matches are not sent again.
            state.held = {str(name): str(v) for name, v in request.initial_resource_versions.items()}
        else:
            for name in subscribe:
                # §1.11: a subscribed name must be sent even if the server thinks the client has it.
                state.held.pop(name, None)
                state.reported_missing.discard(name)
        for name in unsubscribe:
            if name != WILDCARD and after.wildcard and name in before.names:
                # §1.11 "Unsubscribing from Resources": wildcard + explicit X, then unsubscribe X: the
                # server must answer about X (resources if still covered, removed_resources if not).
                state.held.pop(name, None)
                state.unsub_answer.add(name)
        # The client forgets what it no longer subscribes to; it needs no removal for those.
        state.held = {name: v for name, v in state.held.items() if after.selects(name)}
        state.reported_missing &= after.names

    def responses(self, snapshot: Snapshot) -> list[DeltaResponse]:
        """Responses owed for `snapshot`, in ADS order; updates what the client is believed to hold."""
        out = []
        for state in self.ordered_types():
            response = self._respond(state, snapshot)
            if response is not None:
                out.append(response)
        return out

    def _respond(self, state: DeltaTypeState, snapshot: Snapshot) -> DeltaResponse | None:
        available = snapshot.resources(state.type_url)
        selected = selected_entries(state, snapshot)
        changed = [
            entry for name, entry in selected.items()
            if state.held.get(name) != entry.version or name in state.resend
        ]
        missing = {name for name in state.subscription.names if name not in available}
        removed = (
            {name for name in state.held if name not in selected}
            | (missing - state.reported_missing)
            | {name for name in state.unsub_answer if name not in available}
        )
        state.resend.clear()
        state.unsub_answer.clear()
        if not changed and not removed and state.nonce_sent:
            return None  # nothing new; a first request is still answered so Envoy init completes (§1.10)
        if state.type_url == types.CLUSTER_TYPE:
            self._push_eds(state, changed, snapshot)
        for entry in changed:
            state.held[entry.name] = entry.version
        for name in removed:
            state.held.pop(name, None)
        state.reported_missing = (state.reported_missing | removed) & missing
        return self._message(state, snapshot, changed, sorted(removed))

    def _message(self, state: DeltaTypeState, snapshot: Snapshot, changed: list[ResourceEntry],
                 removed: list[str]) -> DeltaResponse:
        nonce = self.next_nonce()
        version = snapshot.version(state.type_url)
        state.record_sent(nonce, version)
        return DeltaResponse(state.type_url, version, nonce, tuple(changed), tuple(removed))

    def _push_eds(self, cds: DeltaTypeState, clusters: list[ResourceEntry], snapshot: Snapshot) -> None:
        # §1.10: after a CDS update Envoy (delta) sends no EDS request and the cluster stays warming, so
        # the ClusterLoadAssignment of every added/changed EDS cluster is pushed right after CDS.
        eds = self.types.get(types.ENDPOINT_TYPE)
        if eds is not None:
            eds.resend |= self.changed_eds_names(cds.held, clusters, snapshot)
