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
