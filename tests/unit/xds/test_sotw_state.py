"""SotwState transitions without gRPC: what each request/snapshot makes the server send."""

from __future__ import annotations

import pytest
from envoy.service.discovery.v3 import discovery_pb2
from google.rpc import status_pb2
from xds_resources import CDS, EDS, LDS, RDS, resource_name, snapshot

from controlplane.xds.stream_state import ProtocolViolation, SotwState


def req(type_url: str, names: tuple[str, ...] = (), version: str = "", nonce: str = "",
        error: str = "") -> discovery_pb2.DiscoveryRequest:
    request = discovery_pb2.DiscoveryRequest(type_url=type_url, resource_names=list(names),
                                             version_info=version, response_nonce=nonce)
    if error:
        request.error_detail.CopyFrom(status_pb2.Status(message=error))
    return request


def ack(response: discovery_pb2.DiscoveryResponse, names: tuple[str, ...] = ()) -> discovery_pb2.DiscoveryRequest:
    return req(response.type_url, names, response.version_info, response.nonce)


def names(response: discovery_pb2.DiscoveryResponse) -> list[str]:
    return [resource_name(item) for item in response.resources]


def test_first_request_answered_then_ack_is_not() -> None:
    state, snap = SotwState(), snapshot()
    assert state.on_request(req(CDS)).kind == "initial"
    (response,) = state.responses(snap)
    assert (response.nonce, response.version_info, names(response)) == ("1", snap.version(CDS), ["c1"])
    event = state.on_request(ack(response))
    assert (event.kind, event.version) == ("ack", snap.version(CDS))
    assert state.responses(snap) == []


def test_nothing_before_a_request_for_the_type() -> None:
    state = SotwState()
    assert state.responses(snapshot()) == []


def test_empty_type_url_is_a_protocol_violation() -> None:
    with pytest.raises(ProtocolViolation):
        SotwState().on_request(req(""))


def test_stale_nonce_ignored_including_subscription() -> None:
    state = SotwState()
    state.on_request(req(EDS, ("c1",)))
    (first,) = state.responses(snapshot())
    state.on_request(ack(first, ("c1",)))
    assert len(state.responses(snapshot(clusters=["c1", "c2"]))) == 1
    event = state.on_request(req(EDS, ("c1", "c2"), first.version_info, first.nonce))
    assert event.kind == "stale"
    assert state.types[EDS].subscription.names == {"c1"}
    assert state.responses(snapshot(clusters=["c1", "c2"])) == []


def test_nack_suppresses_same_version_until_snapshot_changes() -> None:
    state, snap = SotwState(), snapshot()
    state.on_request(req(LDS))
    (response,) = state.responses(snap)
    event = state.on_request(req(LDS, version="", nonce=response.nonce, error="bad listener"))
    assert (event.kind, event.version, event.error_message) == ("nack", snap.version(LDS), "bad listener")
    assert state.responses(snap) == []
    state.on_request(req(LDS, nonce=response.nonce))  # re-request at the old version: still nothing
    assert state.responses(snap) == []
    changed = snapshot(listeners=[("l1", "r1"), ("l2", "r1")])
    (response,) = state.responses(changed)
    assert names(response) == ["l1", "l2"]


def test_growing_named_subscription_sends_new_names_only_when_they_exist() -> None:
    state, snap = SotwState(), snapshot(clusters=["a", "b"])
    state.on_request(req(EDS, ("a",)))
    (response,) = state.responses(snap)
    state.on_request(ack(response, ("a", "b")))
    (response,) = state.responses(snap)
    assert names(response) == ["a", "b"]
    state.on_request(ack(response, ("a", "b", "missing")))
    assert state.responses(snap) == []


def test_responses_follow_ads_order() -> None:
    state = SotwState()
    for type_url, subscribed in ((RDS, ("r1",)), (LDS, ()), (EDS, ("c1",)), (CDS, ())):
        state.on_request(req(type_url, subscribed))
    assert [r.type_url for r in state.responses(snapshot())] == [CDS, EDS, LDS, RDS]


def test_identical_eds_request_after_cds_change_is_answered() -> None:
    """§1.10: a CDS response that adds/changes an EDS cluster makes the next EDS request be answered even
    at the same version (here EDS was answered before the first CDS response)."""
    state, snap = SotwState(), snapshot()
    state.on_request(req(EDS, ("c1",)))
    (eds,) = state.responses(snap)
    state.on_request(ack(eds, ("c1",)))
    assert state.responses(snap) == []
    state.on_request(req(CDS))
    cds, eds_again = state.responses(snap)
    assert (cds.type_url, eds_again.type_url, eds_again.version_info) == (CDS, EDS, eds.version_info)
    state.on_request(ack(eds_again, ("c1",)))
    assert state.responses(snap) == []


def test_no_eds_resend_when_clusters_are_unchanged() -> None:
    state = SotwState()
    state.on_request(req(CDS))
    state.on_request(req(EDS, ("c1",)))
    cds, eds = state.responses(snapshot())
    state.on_request(ack(cds))
    state.on_request(ack(eds, ("c1",)))
    assert state.responses(snapshot(listeners=[("l1", "r1"), ("l2", "r1")])) == []


def test_name_dropped_then_requested_again_is_resent() -> None:
    """§1.6: the client forgets a name it stops requesting, so re-requesting it (same type version) must be
    answered again, e.g. RDS after a listener is removed and re-added."""
    state, snap = SotwState(), snapshot(listeners=[("l1", "r1"), ("l2", "r2")])
    state.on_request(req(RDS, ("r1", "r2")))
    (response,) = state.responses(snap)
    state.on_request(ack(response, ("r1",)))
    assert state.responses(snap) == []
    state.on_request(ack(response, ("r1", "r2")))
    (response,) = state.responses(snap)
    assert (names(response), response.version_info) == (["r1", "r2"], snap.version(RDS))
