"""Selector matching and ranking (reference/kuma-tracing.md §2.3)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta

import pytest
from builders import T0, dataplane, inbound, traffic_trace

from controlplane.policies.traffictrace.matching import (
    SelectorRank,
    match_tags,
    rank_selector,
    select_traffic_trace,
)

WEB = {"kuma.io/service": "web", "kuma.io/protocol": "http", "version": "v1"}


@pytest.mark.parametrize(
    ("match", "tags", "expected"),
    [
        ({"kuma.io/service": "web"}, WEB, True),
        ({"kuma.io/service": "*"}, WEB, True),
        ({"kuma.io/service": "backend"}, WEB, False),
        ({"region": "*"}, WEB, False),  # '*' still needs the key
        ({"kuma.io/service": "web", "version": "v2"}, WEB, False),
        ({"kuma.io/service": "*", "version": "*"}, WEB, True),
    ],
    ids=["exact", "wildcard", "other-value", "wildcard-missing-key", "one-of-two-differs", "two-wildcards"],
)
def test_match_tags(match: Mapping[str, str], tags: Mapping[str, str], expected: bool) -> None:
    assert match_tags(match, tags) is expected


@pytest.mark.parametrize(
    ("match", "rank"),
    [
        ({"kuma.io/service": "web"}, SelectorRank(total=1, exact=1)),
        ({"kuma.io/service": "*"}, SelectorRank(total=1, exact=0)),
        ({"kuma.io/service": "*", "version": "*"}, SelectorRank(total=2, exact=0)),
        ({"kuma.io/service": "web", "version": "*"}, SelectorRank(total=2, exact=1)),
    ],
    ids=["one-exact", "one-wildcard", "two-wildcards", "exact-and-wildcard"],
)
def test_rank_selector(match: Mapping[str, str], rank: SelectorRank) -> None:
    assert rank_selector(match) == rank


def test_total_tags_outrank_exact_matches() -> None:
    assert rank_selector({"kuma.io/service": "*", "version": "*"}) > rank_selector({"kuma.io/service": "web"})


def _web_dataplane() -> object:
    return dataplane(
        inbounds=[inbound(8080, "web", tags={"version": "v1"}), inbound(9090, "admin", tags={"region": "eu"})]
    )


LATER = T0 + timedelta(hours=1)

CASES: list[tuple[str, Sequence[object], str | None]] = [
    ("no-policies", [], None),
    ("no-match", [traffic_trace("a", [{"kuma.io/service": "db"}])], None),
    ("single-wildcard", [traffic_trace("a")], "a"),
    (
        "two-wildcards-beat-one-exact",
        [
            traffic_trace("exact", [{"kuma.io/service": "web"}]),
            traffic_trace("wild", [{"kuma.io/service": "*", "version": "*"}]),
        ],
        "wild",
    ),
    (
        "exact-beats-wildcard-same-total",
        [
            traffic_trace("a-wild", [{"kuma.io/service": "*"}]),
            traffic_trace("b-exact", [{"kuma.io/service": "web"}]),
        ],
        "b-exact",
    ),
    (
        "tie-newest-creation-wins",
        [traffic_trace("a", created=T0), traffic_trace("b", created=LATER)],
        "b",
    ),
    (
        "tie-newest-creation-wins-even-if-first-by-name",
        [traffic_trace("b", created=T0), traffic_trace("a", created=LATER)],
        "a",
    ),
    ("full-tie-first-name-wins", [traffic_trace("b"), traffic_trace("a")], "a"),
    (
        "higher-rank-wins-over-newer",
        [
            traffic_trace("old-exact", [{"kuma.io/service": "web"}], created=T0),
            traffic_trace("new-wild", [{"kuma.io/service": "*"}], created=LATER),
        ],
        "old-exact",
    ),
    (
        "tags-must-come-from-one-inbound",
        [traffic_trace("cross", [{"kuma.io/service": "web", "region": "eu"}])],
        None,
    ),
    (
        "best-selector-of-a-policy-competes",
        [
            traffic_trace("multi", [{"kuma.io/service": "db"}, {"kuma.io/service": "admin", "region": "eu"}]),
            traffic_trace("single", [{"kuma.io/service": "web"}], created=LATER),
        ],
        "multi",
    ),
]


@pytest.mark.parametrize(("policies", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_select_traffic_trace(policies: Sequence[object], expected: str | None) -> None:
    selected = select_traffic_trace(_web_dataplane(), policies)  # type: ignore[arg-type]
    assert (selected.name if selected else None) == expected


def test_selection_does_not_depend_on_input_order() -> None:
    policies = [traffic_trace(name) for name in ("c", "a", "b")]
    assert select_traffic_trace(_web_dataplane(), policies).name == "a"  # type: ignore[arg-type, union-attr]
    assert select_traffic_trace(_web_dataplane(), policies[::-1]).name == "a"  # type: ignore[arg-type, union-attr]
