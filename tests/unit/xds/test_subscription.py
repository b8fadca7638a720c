"""Subscription rules, including the spec's worked wildcard examples (xds-protocol.md §1.6, check 5)."""

from __future__ import annotations

from controlplane.xds.subscription import Subscription


def test_sotw_spec_example() -> None:
    """"How the client specifies what resources to return", SotW example, 4 steps."""
    sub = Subscription().apply_sotw([])
    assert (sub.wildcard, sub.names) == (True, frozenset())  # 1: empty → legacy wildcard
    sub = sub.apply_sotw(["*", "A"])
    assert (sub.wildcard, sub.names) == (True, {"A"})  # 2: wildcard continues, A added
    sub = sub.apply_sotw(["A"])
    assert (sub.wildcard, sub.names) == (False, {"A"})  # 3: wildcard dropped, A kept
    sub = sub.apply_sotw([])
    assert (sub.wildcard, sub.names) == (False, frozenset())  # 4: not wildcard any more: nothing


def test_delta_spec_example() -> None:
    """Same section, delta example, 4 steps."""
    sub = Subscription().apply_delta([], [])
    assert (sub.wildcard, sub.names) == (True, frozenset())
    sub = sub.apply_delta(["A"], [])
    assert (sub.wildcard, sub.names) == (True, {"A"})
    sub = sub.apply_delta([], ["*"])
    assert (sub.wildcard, sub.names) == (False, {"A"})
    sub = sub.apply_delta([], [])
    assert (sub.wildcard, sub.names) == (False, {"A"})


def test_sotw_empty_list_repeated_stays_legacy_wildcard() -> None:
    sub = Subscription().apply_sotw([]).apply_sotw([])
    assert sub.wildcard and sub.requested


def test_sotw_named_first_is_never_wildcard() -> None:
    """gRPC clients name LDS/CDS explicitly; they must never be treated as wildcard (§1.6)."""
    sub = Subscription().apply_sotw(["svc:50051"])
    assert not sub.wildcard
    assert sub.selects("svc:50051") and not sub.selects("other")
    assert not sub.apply_sotw([]).wildcard


def test_delta_named_first_then_explicit_wildcard() -> None:
    sub = Subscription().apply_delta(["a"], [])
    assert not sub.wildcard
    sub = sub.apply_delta(["*"], ["a"])
    assert (sub.wildcard, sub.names) == (True, frozenset())


def test_delta_unsubscribe_unknown_name_is_ignored() -> None:
    sub = Subscription().apply_delta(["a"], []).apply_delta([], ["zzz"])
    assert sub.names == {"a"}


def test_not_requested_selects_nothing() -> None:
    sub = Subscription()
    assert not sub.requested and not sub.selects("a")
