"""Protocol parsing and inference of a destination's protocol (reference/kuma-tracing.md §3.1)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from controlplane.resources.protocol import Protocol, infer_protocol, parse_protocol


def _endpoints(*protocols: str | None) -> list[dict[str, str]]:
    return [
        {"kuma.io/service": "svc"} | ({"kuma.io/protocol": p} if p is not None else {}) for p in protocols
    ]


@pytest.mark.parametrize(
    ("protocols", "expected"),
    [
        ((), Protocol.UNKNOWN),
        ((None,), Protocol.UNKNOWN),
        (("http", None), Protocol.UNKNOWN),
        (("http",), Protocol.HTTP),
        (("http", "http"), Protocol.HTTP),
        (("HTTP2", "http2"), Protocol.HTTP2),
        (("grpc", "grpc"), Protocol.GRPC),
        (("http", "tcp"), Protocol.TCP),
        (("grpc", "http"), Protocol.TCP),
        (("grpc", "http2"), Protocol.HTTP2),
        (("http2", "grpc"), Protocol.HTTP2),
        (("http", "http2"), Protocol.TCP),
        (("kafka", "http"), Protocol.TCP),
        (("kafka", "kafka"), Protocol.KAFKA),
        (("grpc", "http2", "tcp"), Protocol.TCP),
        (("bogus", "http"), Protocol.UNKNOWN),
    ],
    ids=lambda value: "-".join(str(p) for p in value) if isinstance(value, tuple) else None,
)
def test_infer_protocol(protocols: Sequence[str | None], expected: Protocol) -> None:
    assert infer_protocol(_endpoints(*protocols)) is expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("http", Protocol.HTTP),
        ("GRPC", Protocol.GRPC),
        ("", Protocol.UNKNOWN),
        (None, Protocol.UNKNOWN),
        ("mongo", Protocol.UNKNOWN),
    ],
)
def test_parse_protocol(value: str | None, expected: Protocol) -> None:
    assert parse_protocol(value) is expected


@pytest.mark.parametrize("protocol", list(Protocol), ids=lambda p: p.value)
def test_only_http_family_gets_an_hcm(protocol: Protocol) -> None:
    assert protocol.is_http is (protocol in (Protocol.HTTP, Protocol.HTTP2, Protocol.GRPC))
