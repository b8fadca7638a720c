"""DeltaState transitions without gRPC."""

from __future__ import annotations

from envoy.service.discovery.v3 import discovery_pb2
from google.rpc import status_pb2
from xds_resources import CDS, EDS, snapshot

from controlplane.xds.delta import DeltaState


def req(type_url: str, subscribe: tuple[str, ...] = (), unsubscribe: tuple[str, ...] = (), nonce: str = "",
        initial: dict[str, str] | None = None, error: str = "") -> discovery_pb2.DeltaDiscoveryRequest:
    request = discovery_pb2.DeltaDiscoveryRequest(
        type_url=type_url, resource_names_subscribe=list(subscribe),
        resource_names_unsubscribe=list(unsubscribe), response_nonce=nonce,
        initial_resource_versions=initial or {},
    )
    if error:
        request.error_detail.CopyFrom(status_pb2.Status(message=error))
    return request


def summary(response: discovery_pb2.DeltaDiscoveryResponse) -> tuple[list[str], list[str]]:
    return [r.name for r in response.resources], list(response.removed_resources)


def test_wildcard_then_incremental_changes() -> None:
    state = DeltaState()
    assert state.on_request(req(CDS)).kind == "initial"
    (response,) = state.responses(snapshot(clusters=["a", "b"]))
    assert summary(response) == (["a", "b"], [])
    assert state.on_request(req(CDS, nonce=response.nonce)).kind == "ack"
    assert state.responses(snapshot(clusters=["a", "b"])) == []
    (response,) = state.responses(snapshot(clusters=["a", "c"]))
    assert summary(response) == (["c"], ["b"])


def test_missing_reported_once_then_sent_when_created() -> None:
    state = DeltaState()
    state.on_request(req(EDS, ("a", "b")))
    (response,) = state.responses(snapshot(clusters=["a"]))
    assert summary(response) == (["a"], ["b"])
    assert state.responses(snapshot(clusters=["a"])) == []
    (response,) = state.responses(snapshot(clusters=["a", "b"]))
    assert summary(response) == (["b"], [])
    (response,) = state.responses(snapshot(clusters=["a"]))  # deleted again: reported again
    assert summary(response) == ([], ["b"])


def test_unsubscribed_names_are_forgotten_without_a_response() -> None:
    state = DeltaState()
    state.on_request(req(EDS, ("a", "b")))
    state.responses(snapshot(clusters=["a", "b"]))
    state.on_request(req(EDS, unsubscribe=("b",)))
    assert state.responses(snapshot(clusters=["a", "b"])) == []
    assert state.responses(snapshot(clusters=["a"])) == []


def test_nack_recorded_and_not_resent() -> None:
    state = DeltaState()
    state.on_request(req(CDS))
    snap = snapshot()
    (response,) = state.responses(snap)
    event = state.on_request(req(CDS, nonce=response.nonce, error="bad"))
    assert (event.kind, event.version, event.error_message) == ("nack", snap.version(CDS), "bad")
    assert state.responses(snap) == []


def test_stale_nonce_kind_but_subscription_applied() -> None:
    state = DeltaState()
    state.on_request(req(EDS, ("a",)))
    state.responses(snapshot(clusters=["a", "b"]))
    state.responses(snapshot(clusters=["a", "b"], endpoint_ports={"a": 1}))
    event = state.on_request(req(EDS, ("b",), nonce="1"))
    assert event.kind == "stale"
    (response,) = state.responses(snapshot(clusters=["a", "b"], endpoint_ports={"a": 1}))
    assert summary(response) == (["b"], [])


def test_cds_change_pushes_cla_even_if_unchanged() -> None:
    state = DeltaState()
    state.on_request(req(CDS))
    state.on_request(req(EDS, ("c1",)))
    state.responses(snapshot())
    cds, eds = state.responses(snapshot(connect_timeout_ms=4000))
    assert (summary(cds), summary(eds)) == ((["c1"], []), (["c1"], []))
