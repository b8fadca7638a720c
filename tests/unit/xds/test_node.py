"""Node id parsing, Kuma's rules and messages (reference/kuma-tracing.md §4.2)."""

from __future__ import annotations

import pytest

from controlplane.xds.node import InvalidNodeId, NodeId, parse_node_id


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("default.web-1", NodeId("default", "web-1")),
        ("default.web.with.dots", NodeId("default", "web.with.dots")),
        (".ingress", NodeId("", "ingress")),
    ],
    ids=["simple", "dots-in-name", "empty-mesh"],
)
def test_parse(raw: str, expected: NodeId) -> None:
    assert parse_node_id(raw) == expected
    assert str(parse_node_id(raw)) == raw


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "Envoy ID must not be nil"),
        ("web-1", "the name should be provided after the dot"),
        ("default.", "name must not be empty"),
    ],
    ids=["empty", "no-dot", "no-name"],
)
def test_invalid(raw: str, message: str) -> None:
    with pytest.raises(InvalidNodeId) as caught:
        parse_node_id(raw)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    "raw",
    ["default.Web", "default.web 1", "de/fault.web", "default.web\x00", "default.wéb", "mesh.a." + "x" * 300,
     "d" * 254 + ".web", "default.web;DROP TABLE"],
    ids=["upper", "space", "slash", "nul", "unicode", "long-name", "long-mesh", "sql"],
)
def test_invalid_characters_and_lengths_are_rejected(raw: str) -> None:
    with pytest.raises(InvalidNodeId):
        parse_node_id(raw)
