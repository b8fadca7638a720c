"""wire.py encodings against the generated protobuf classes (the ADS server writes these bytes as is)."""

from __future__ import annotations

from envoy.service.discovery.v3 import discovery_pb2
from google.protobuf import any_pb2
from xds_resources import CDS, cluster

from controlplane.xds import wire
from controlplane.xds.delta import DeltaResponse
from controlplane.xds.snapshot import ResourceEntry
from controlplane.xds.stream_state import SotwResponse


def _entries(*names: str) -> tuple[ResourceEntry, ...]:
    return tuple(ResourceEntry.create(CDS, name, cluster(name)) for name in names)


def test_sotw_response_equals_the_message() -> None:
    entries = _entries("c1", "c" * 300)  # a name long enough for multi-byte lengths
    encoded = SotwResponse(CDS, "v1", "7", entries).encode()
    expected = discovery_pb2.DiscoveryResponse(version_info="v1", type_url=CDS, nonce="7",
                                               resources=[e.packed for e in entries])
    assert discovery_pb2.DiscoveryResponse.FromString(encoded) == expected
    assert encoded == expected.SerializeToString(deterministic=True)


def test_delta_response_equals_the_message() -> None:
    entries = _entries("a", "b")
    encoded = DeltaResponse(CDS, "v2", "3", entries, ("gone", "")).encode()
    expected = discovery_pb2.DeltaDiscoveryResponse(
        system_version_info="v2", type_url=CDS, nonce="3", removed_resources=["gone", ""],
        resources=[discovery_pb2.Resource(name=e.name, version=e.version, resource=e.packed) for e in entries],
    )
    assert discovery_pb2.DeltaDiscoveryResponse.FromString(encoded) == expected


def test_empty_response_and_large_value() -> None:
    assert discovery_pb2.DiscoveryResponse.FromString(wire.sotw_response("", (), CDS, "1")) == (
        discovery_pb2.DiscoveryResponse(type_url=CDS, nonce="1"))
    value = bytes(range(256)) * 1000
    item = wire.any_item("type.googleapis.com/x", value)
    parsed = discovery_pb2.DiscoveryResponse.FromString(item)
    assert parsed.resources == [any_pb2.Any(type_url="type.googleapis.com/x", value=value)]


def _listener(tracing: object | None = None, long_name: bool = False) -> bytes:
    """A listener shaped like ours (one chain, one HCM) serialised whole, optionally with a tracing block."""
    from envoy.config.core.v3 import address_pb2
    from envoy.config.listener.v3 import listener_components_pb2, listener_pb2
    from envoy.extensions.filters.network.http_connection_manager.v3 import (
        http_connection_manager_pb2 as hcm_pb2,
    )

    hcm = hcm_pb2.HttpConnectionManager(stat_prefix="s" * (300 if long_name else 3))
    hcm.rds.route_config_name = "r"
    if tracing is not None:
        hcm.tracing.CopyFrom(tracing)  # type: ignore[arg-type]
    packed = any_pb2.Any()
    packed.Pack(hcm)
    listener = listener_pb2.Listener(
        name="l", address=address_pb2.Address(socket_address=address_pb2.SocketAddress(address="1.2.3.4",
                                                                                        port_value=80)),
        filter_chains=[listener_components_pb2.FilterChain(filters=[
            listener_components_pb2.Filter(name="envoy.filters.network.http_connection_manager",
                                           typed_config=packed)])],
        traffic_direction=1,
    )
    return listener.SerializeToString(deterministic=True)


def test_template_renders_what_the_whole_message_serialises_to() -> None:
    from envoy.extensions.filters.network.http_connection_manager.v3 import (
        http_connection_manager_pb2 as hcm_pb2,
    )

    path = (3, 3, 4, 2, 7)
    for long_name in (False, True):  # a length crossing one varint byte on every level
        tmpl = wire.template(_listener(long_name=long_name), path)
        assert tmpl.render(None) == _listener(long_name=long_name)
        for size in (1, 200, 20_000):
            block = hcm_pb2.HttpConnectionManager.Tracing()
            block.custom_tags.add(tag="t" * size).literal.value = "v"
            assert tmpl.render(block.SerializeToString(deterministic=True)) == _listener(block, long_name)


def test_template_refuses_a_path_it_cannot_open() -> None:
    import pytest

    data = _listener()
    with pytest.raises(ValueError, match="field 7 occurs 0 times at depth 0"):
        wire.template(data, (7, 1))  # no field 7 in a listener to descend into
    with pytest.raises(ValueError, match="field 1 occurs 1 times at depth 0"):
        wire.template(data, (1,))  # the open field is already set


def test_split_fields_reads_every_wire_type() -> None:
    from envoy.config.cluster.v3 import cluster_pb2
    from google.protobuf import duration_pb2

    message = cluster_pb2.Cluster(name="c", type=cluster_pb2.Cluster.EDS,
                                  connect_timeout=duration_pb2.Duration(seconds=5))
    message.lb_policy = cluster_pb2.Cluster.RANDOM
    message.dns_refresh_rate.nanos = 7
    data = message.SerializeToString(deterministic=True)
    fields = wire.split_fields(data)
    assert b"".join(raw for _, raw in fields) == data
    assert [number for number, _ in fields] == sorted(number for number, _ in fields)
