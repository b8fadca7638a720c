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

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Final

_LEN: int = 2
"""Wire type of length-delimited fields (strings, bytes, messages)."""


_ONE_BYTE: Final = tuple(bytes((n,)) for n in range(0x80))


def _varint(value: int) -> bytes:
    if value < 0x80:
        return _ONE_BYTE[value]
    if value < 0x4000:
        return bytes(((value & 0x7F) | 0x80, value >> 7))
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _read_varint(data: bytes, at: int) -> tuple[int, int]:
    """The varint at `at` and the offset after it."""
    value = shift = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, at
        shift += 7


def split_fields(data: bytes) -> list[tuple[int, bytes]]:
    """The top-level fields of a serialised message, in order, as (field number, the field's raw bytes
    including its tag). Supports the wire types protobuf 3 emits (varint, 64-bit, length-delimited, 32-bit)."""
    fields, at = [], 0
    while at < len(data):
        start = at
        tag, at = _read_varint(data, at)
        wire_type = tag & 7
        if wire_type == 0:
            _, at = _read_varint(data, at)
        elif wire_type == 1:
            at += 8
        elif wire_type == _LEN:
            length, at = _read_varint(data, at)
            at += length
        elif wire_type == 5:
            at += 4
        else:
            raise ValueError(f"unsupported wire type {wire_type} at offset {start}")
        fields.append((tag >> 3, data[start:at]))
    if at != len(data):
        raise ValueError("truncated message")
    return fields


@dataclass(frozen=True, slots=True)
class Template:
    """A serialised message with one nested message field left open: `render(value)` gives the bytes the
    message would serialise to with that field set to the message whose bytes are `value` (or unset).

    Why: a listener's HCM `tracing` block is the only part of it a tracing change alters, and building and
    serialising the whole listener again for each of thousands of proxies was most of a mesh-wide change's
    cost (bench/RESULTS.md §3). A nested message is `tag + length + bytes`, and deterministic serialisation
    writes fields in field-number order, so the message is: the fields numbered below the open one at each
    level, the open field (its length recomputed), then the fields numbered above it. Built by `template`;
    tests/unit/xds/test_wire.py compares renders with whole-message serialisation.
    """

    path: tuple[int, ...]
    """Field numbers from the outer message down to the open field (each ≤ 15, set at most once)."""
    before: tuple[bytes, ...]
    after: tuple[bytes, ...]
    _tags: tuple[bytes, ...] = dataclass_field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_tags", tuple(_ONE_BYTE[(n << 3) | _LEN] for n in self.path))

    def render(self, value: bytes | None) -> bytes:
        tags, before, after = self._tags, self.before, self.after
        body = tags[-1] + _varint(len(value)) + value if value is not None else b""
        for level in range(len(tags) - 1, 0, -1):
            body = before[level] + body + after[level]
            body = tags[level - 1] + _varint(len(body)) + body
        return before[0] + body + after[0]


def template(data: bytes, path: Sequence[int]) -> Template:
    """The `Template` of the serialised message `data` open at `path`: every field on the way must occur
    exactly once and the open field must be absent (ValueError otherwise)."""
    before: list[bytes] = []
    after: list[bytes] = []
    for depth, number in enumerate(path):
        fields = split_fields(data)
        matching = [raw for n, raw in fields if n == number]
        last = depth == len(path) - 1
        if len(matching) != (0 if last else 1):
            raise ValueError(f"field {number} occurs {len(matching)} times at depth {depth}")
        before.append(b"".join(raw for n, raw in fields if n < number))
        after.append(b"".join(raw for n, raw in fields if n > number))
        if not last:
            _, at = _read_varint(matching[0], 0)
            _, at = _read_varint(matching[0], at)
            data = matching[0][at:]
    return Template(tuple(path), tuple(before), tuple(after))


def field(number: int, data: bytes) -> bytes:
    """One length-delimited field (`number` ≤ 15, so the tag is a single byte)."""
    return _ONE_BYTE[(number << 3) | _LEN] + _varint(len(data)) + data


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
