"""Service protocols and the inference of an outbound's protocol from its destination endpoints.

Follows Kuma's `pkg/xds/generator/protocol.go` (reference/kuma-tracing.md §3.1): the protocol of a
destination comes from the `kuma.io/protocol` tags of the endpoints behind it, never from the outbound's own
tags; disagreeing endpoints fall back to the first protocol both stacks share.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from typing import Final

from controlplane.resources.tags import PROTOCOL_TAG


class Protocol(enum.Enum):
    UNKNOWN = "unknown"
    TCP = "tcp"
    HTTP = "http"
    HTTP2 = "http2"
    GRPC = "grpc"
    KAFKA = "kafka"

    @property
    def is_http(self) -> bool:
        """Protocols that get an HTTP connection manager (and therefore tracing)."""
        return self in _HTTP_FAMILY

    @property
    def uses_http2_upstream(self) -> bool:
        """Protocols whose upstream cluster must speak HTTP/2 (gRPC rides on HTTP/2)."""
        return self in (Protocol.HTTP2, Protocol.GRPC)


_HTTP_FAMILY: Final = frozenset({Protocol.HTTP, Protocol.HTTP2, Protocol.GRPC})

# Each protocol and the protocols it can be downgraded to, most specific first.
_STACKS: Final[Mapping[Protocol, tuple[Protocol, ...]]] = {
    Protocol.GRPC: (Protocol.GRPC, Protocol.HTTP2, Protocol.TCP),
    Protocol.HTTP2: (Protocol.HTTP2, Protocol.TCP),
    Protocol.HTTP: (Protocol.HTTP, Protocol.TCP),
    Protocol.KAFKA: (Protocol.KAFKA, Protocol.TCP),
    Protocol.TCP: (Protocol.TCP,),
}


def parse_protocol(value: str | None) -> Protocol:
    """Case-insensitive parse of a `kuma.io/protocol` value; missing or unknown values are UNKNOWN."""
    if not value:
        return Protocol.UNKNOWN
    try:
        return Protocol(value.lower())
    except ValueError:
        return Protocol.UNKNOWN


def protocol_of(tags: Mapping[str, str]) -> Protocol:
    return parse_protocol(tags.get(PROTOCOL_TAG))


def common_protocol(one: Protocol, another: Protocol) -> Protocol:
    """The most specific protocol both sides can speak: grpc∧http2 → http2, http∧http2 → tcp."""
    if one is another:
        return one
    if Protocol.UNKNOWN in (one, another):
        return Protocol.UNKNOWN
    for first in _STACKS[one]:
        if first in _STACKS[another]:
            return first
    return Protocol.UNKNOWN


def infer_protocol(endpoint_tags: Iterable[Mapping[str, str]]) -> Protocol:
    """Protocol of a destination from its endpoints' tags; no endpoints or any untagged endpoint → UNKNOWN."""
    result: Protocol | None = None
    for tags in endpoint_tags:
        protocol = protocol_of(tags)
        result = protocol if result is None else common_protocol(result, protocol)
    return Protocol.UNKNOWN if result is None else result
