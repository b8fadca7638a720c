"""Protobuf wire encoding of ADS responses from bytes that were serialised once.

Why: building a `DiscoveryResponse` per stream copies every `Any` into a new message and grpc serialises it
again, once per stream and push; at 1 000 streams that was the largest cost of a push after generation
(bench/RESULTS.md §2). The protobuf wire format is a concatenation of fields, and a parser accepts fields
in any order, so a response is the bytes of its per-resource fields (encoded once per shared
`ResourceEntry`, see snapshot.py) joined with a few small per-stream fields (version, type URL, nonce).
The ADS server registers its methods with an identity response serialiser and writes these bytes.

Field numbers (envoy/service/discovery/v3/discovery.proto): DiscoveryResponse version_info=1,
resources=2, type_url=4, nonce=5; DeltaDiscoveryResponse system_version_info=1, resources=2, type_url=4,
nonce=5, removed_resources=6; Resource version=1, resource=2, name=3; google.protobuf.Any type_url=1,
value=2. tests/unit/xds/test_wire.py checks the encodings against the generated classes.
"""

from __future__ import annotations

from collections.abc import Iterable

_LEN: int = 2
"""Wire type of length-delimited fields (strings, bytes, messages)."""


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def field(number: int, data: bytes) -> bytes:
    """One length-delimited field (`number` ≤ 15, so the tag is a single byte)."""
    return bytes(((number << 3) | _LEN,)) + _varint(len(data)) + data


def text_field(number: int, text: str) -> bytes:
    """A string field; proto3 omits empty strings, and so do we."""
    return field(number, text.encode()) if text else b""


def any_item(type_url: str, value: bytes) -> bytes:
    """`DiscoveryResponse.resources` entry: a packed `Any` as field 2."""
    return field(2, text_field(1, type_url) + field(2, value))


def resource_item(name: str, version: str, type_url: str, value: bytes) -> bytes:
    """`DeltaDiscoveryResponse.resources` entry: a `Resource{version, resource: Any, name}` as field 2."""
    body = text_field(1, version) + field(2, text_field(1, type_url) + field(2, value)) + text_field(3, name)
    return field(2, body)


def sotw_response(version: str, items: Iterable[bytes], type_url: str, nonce: str) -> bytes:
    """A serialised `DiscoveryResponse` from pre-encoded `any_item`s."""
    return b"".join((text_field(1, version), *items, text_field(4, type_url), text_field(5, nonce)))


def delta_response(version: str, items: Iterable[bytes], type_url: str, nonce: str,
                   removed: Iterable[str]) -> bytes:
    """A serialised `DeltaDiscoveryResponse` from pre-encoded `resource_item`s and removed names."""
    return b"".join((text_field(1, version), *items, text_field(4, type_url), text_field(5, nonce),
                     *(field(6, name.encode()) for name in removed)))
