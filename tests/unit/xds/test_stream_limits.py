"""StreamLimits in the pure state machines (SotW and delta) and the Subscription's name accounting, without gRPC.

Each breach must raise LimitExceeded naming the limit, before the request changes the stream's state; a
request exactly at a limit passes. Client text the stream keeps (version_info, NACK messages) is cut.
"""

from __future__ import annotations

import pytest
from envoy.service.discovery.v3 import discovery_pb2
from hypothesis import given
from hypothesis import strategies as st
from test_delta_state import req as delta_req
from test_sotw_state import req as sotw_req
from xds_resources import CDS, EDS, LDS, RDS

from controlplane.xds.delta import DeltaState
from controlplane.xds.limits import MAX_CLIENT_TEXT, LimitExceeded, StreamLimits, client_text
from controlplane.xds.stream_state import SotwState
from controlplane.xds.subscription import Subscription

SMALL = StreamLimits(max_type_urls=2, max_type_url_length=80, max_names=4, max_name_chars=12)


def names(count: int, width: int = 1) -> tuple[str, ...]:
    return tuple(f"{i:0{width}d}" for i in range(count))


def rejected(call: object, *args: object) -> LimitExceeded:
    with pytest.raises(LimitExceeded) as caught:
        call(*args)  # type: ignore[operator]
    return caught.value


def test_sotw_names_per_request() -> None:
    state = SotwState(SMALL)
    state.on_request(sotw_req(EDS, names(4)))
    exc = rejected(state.on_request, sotw_req(EDS, names(5)))
    assert (exc.limit, str(exc)) == (
        "names_per_request", f"resource_names lists 5 names for {EDS}; at most 4 per request")
    assert state.types[EDS].subscription.names == set(names(4)), "the rejected request changed the state"


def test_sotw_subscribed_names_count_over_all_types() -> None:
    state = SotwState(SMALL)
    state.on_request(sotw_req(EDS, ("a", "b", "c")))
    exc = rejected(state.on_request, sotw_req(RDS, ("d", "e")))
    assert (exc.limit, str(exc)) == (
        "subscribed_names", "the stream would subscribe to 5 resource names; at most 4 per stream")
    state.on_request(sotw_req(RDS, ("d",)))  # replacing, not adding: 3 + 1
    assert sum(len(t.subscription.names) for t in state.types.values()) == 4


def test_sotw_subscribed_name_chars() -> None:
    state = SotwState(SMALL)
    state.on_request(sotw_req(EDS, ("aaaaaa", "bbbbbb")))  # 12 characters: at the limit
    exc = rejected(state.on_request, sotw_req(RDS, ("c",)))
    assert (exc.limit, str(exc)) == (
        "subscribed_name_chars", "the stream's subscribed names would total 13 characters; at most 12 per stream")


def test_type_urls_per_stream_and_length() -> None:
    state = SotwState(SMALL)
    state.on_request(sotw_req(CDS))
    state.on_request(sotw_req(LDS))
    exc = rejected(state.on_request, sotw_req(EDS))
    assert (exc.limit, str(exc)) == ("type_urls", "more than 2 distinct type URLs on one stream")
    assert set(state.types) == {CDS, LDS}
    state.on_request(sotw_req(CDS))  # a known type is not counted again
    exc = rejected(SotwState(SMALL).on_request, sotw_req("t" * 81))
    assert (exc.limit, str(exc)) == ("type_url_length", "type_url is longer than 80 characters (81)")


@pytest.mark.parametrize("field", ["subscribe", "unsubscribe", "initial"])
def test_delta_lists_per_request(field: str) -> None:
    state = DeltaState(SMALL)
    kwargs: dict[str, object] = {"subscribe": names(1)} if field != "subscribe" else {}
    if field == "initial":
        kwargs["initial"] = dict.fromkeys(names(5), "v")
    else:
        kwargs[field] = names(5)
    exc = rejected(state.on_request, delta_req(EDS, **kwargs))  # type: ignore[arg-type]
    label = {"subscribe": "resource_names_subscribe", "unsubscribe": "resource_names_unsubscribe",
             "initial": "initial_resource_versions"}[field]
    assert (exc.limit, str(exc)) == ("names_per_request", f"{label} lists 5 names for {EDS}; at most 4 per request")
    assert EDS not in state.types or not state.types[EDS].subscription.requested


def test_delta_subscriptions_accumulate_up_to_the_stream_limit() -> None:
    """Each request is small; the stream's subscription grows with every one of them (the hole a
    per-request cap alone leaves open), and unsubscribing gives the room back."""
    state = DeltaState(SMALL)
    state.on_request(delta_req(EDS, subscribe=("a", "b")))
    state.on_request(delta_req(EDS, subscribe=("c",)))
    state.on_request(delta_req(RDS, subscribe=("d",)))
    exc = rejected(state.on_request, delta_req(RDS, subscribe=("e",)))
    assert exc.limit == "subscribed_names"
    assert state.types[RDS].subscription.names == {"d"}
    state.on_request(delta_req(EDS, unsubscribe=("a", "b")))
    state.on_request(delta_req(RDS, subscribe=("e", "f")))
    assert state.types[RDS].subscription.names == {"d", "e", "f"}
    assert rejected(state.on_request, delta_req(EDS, subscribe=("g",))).limit == "subscribed_names"


def test_delta_long_names_accumulate_to_the_character_limit() -> None:
    state = DeltaState(SMALL)
    state.on_request(delta_req(EDS, subscribe=("a" * 6,)))
    state.on_request(delta_req(EDS, subscribe=("b" * 6,)))
    exc = rejected(state.on_request, delta_req(EDS, subscribe=("c",)))
    assert (exc.limit, str(exc)) == (
        "subscribed_name_chars", "the stream's subscribed names would total 13 characters; at most 12 per stream")


def test_default_limits_admit_a_large_proxy() -> None:
    """What a big real proxy sends passes: 30 000 EDS names and as many delta initial versions."""
    clusters = tuple(f"service-{i}.namespace.svc:8080" for i in range(30_000))
    sotw = SotwState()
    sotw.on_request(sotw_req(CDS))
    sotw.on_request(sotw_req(EDS, clusters))
    delta = DeltaState()
    delta.on_request(delta_req(CDS, initial=dict.fromkeys(clusters, "0123456789abcdef")))
    assert len(sotw.types[EDS].subscription.names) == len(delta.types[CDS].held) == 30_000


def test_client_text_is_cut_where_the_stream_keeps_it() -> None:
    long = "x" * (MAX_CLIENT_TEXT + 10)
    assert client_text(long) == "x" * MAX_CLIENT_TEXT + "... (10 more characters)"
    assert client_text("short") == "short"
    state = SotwState()
    event = state.on_request(sotw_req(CDS, version=long))
    assert event.version == state.types[CDS].version_acked == client_text(long)
    state.on_request(sotw_req(CDS, error=long))
    assert state.types[CDS].nack_message == client_text(long)
    nack = DeltaState()
    nack.on_request(delta_req(CDS))
    event = nack.on_request(delta_req(CDS, error=long))
    assert event.error_message == nack.types[CDS].nack_message == client_text(long)


@given(st.lists(st.tuples(st.lists(st.sampled_from(["*", "a", "bb", "ccc", "dddd"]), max_size=4),
                          st.lists(st.sampled_from(["*", "a", "bb", "ccc", "dddd"]), max_size=4)), max_size=8))
def test_subscription_name_chars_tracks_its_names(steps: list[tuple[list[str], list[str]]]) -> None:
    sub = Subscription()
    for subscribe, unsubscribe in steps:
        sub = sub.apply_delta(subscribe, unsubscribe)
        assert sub.name_chars == sum(map(len, sub.names))
        sotw = sub.apply_sotw(subscribe)
        assert sotw.name_chars == sum(map(len, sotw.names))


def test_requests_are_protobuf_messages() -> None:
    """The lists are measured with len() on the request's repeated fields, before copying (no str() per name)."""
    request = discovery_pb2.DiscoveryRequest(type_url=EDS, resource_names=list(names(5)))
    exc = rejected(SMALL.check_request_list, "resource_names", request.resource_names, EDS)
    assert exc.limit == "names_per_request"
