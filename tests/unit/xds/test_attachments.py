"""Where a policy applies, is displaced by another kind, or is outranked by one of its own kind
(controlplane/xds/attachments.py), on the real plugins' decisions."""

from __future__ import annotations

from fleet_topology import DATAPLANES, MESH, POLICIES, records

from controlplane.xds.attachments import Attachment, policy_attachments


def attachments(name: str) -> list[Attachment]:
    policy = next(p for p in POLICIES if p.name == name)
    return policy_attachments(policy.kind, policy, MESH, DATAPLANES, records())


def test_a_traffictrace_applies_is_outranked_and_is_displaced() -> None:
    assert attachments("all") == [
        Attachment("backend-1", "applied", 1),
        Attachment("db-1", "displaced", 1, "MeshTrace", "db-trace"),
        Attachment("web-1", "outranked", 0, "TrafficTrace", "web-only"),
    ]
    assert attachments("web-only") == [Attachment("web-1", "applied", 1)]


def test_a_meshtrace_applies_where_it_targets() -> None:
    assert attachments("db-trace") == [Attachment("db-1", "applied", 1)]


def test_proxies_not_decided_yet_are_left_out() -> None:
    policy = POLICIES[0]
    recorded = records()
    del recorded["default.backend-1"]
    assert [a.dataplane for a in policy_attachments(policy.kind, policy, MESH, DATAPLANES, recorded)] == ["db-1", "web-1"]
