"""Kuma-style inspection: what the control plane decided and generated for a proxy, as typed values.

Reads only what the reconciler already computed and published: its per-proxy records (every policy
plugin's decision, the per-listener notes of the published snapshot) and the snapshot cache, plus the ADS
status registry. Nothing is re-derived here, so the answer cannot disagree with the config that was sent,
and a request costs a few look-ups (or, for a policy's dataplanes, one pass over the mesh's records)
instead of a mesh context build. Turning these values into HTTP bodies is the API's job (api/inspect_views.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from controlplane.errors import NotFound
from controlplane.policies.plugins import ProxyPolicies
from controlplane.resources.dataplane import DATAPLANE
from controlplane.resources.kind import Kind
from controlplane.resources.model import ResourceKey
from controlplane.xds.cache import SnapshotCache
from controlplane.xds.envoy_version import EnvoyVersion
from controlplane.xds.generate.notes import ListenerNote
from controlplane.xds.node import node_id, parse_node_id
from controlplane.xds.observer import NodeStatus, StatusRegistry
from controlplane.xds.reconciler import Reconciler
from controlplane.xds.snapshot import Snapshot


@dataclass(frozen=True, slots=True)
class DataplaneView:
    """A dataplane's decisions and listeners; `policies` is None until its first regeneration."""

    mesh: str
    name: str
    policies: ProxyPolicies | None
    listeners: tuple[ListenerNote, ...]


@dataclass(frozen=True, slots=True)
class XdsView:
    """A dataplane's published snapshot (None before the first) and its ADS status (None: not connected)."""

    node_id: str
    snapshot: Snapshot | None
    status: NodeStatus | None


class XdsInspector:
    def __init__(self, reconciler: Reconciler, cache: SnapshotCache, status: StatusRegistry) -> None:
        self.reconciler, self.cache, self.status = reconciler, cache, status

    def _check_dataplane(self, mesh: str, name: str) -> str:
        if self.reconciler.world.get(ResourceKey(DATAPLANE, mesh, name)) is None:
            raise NotFound(f"dataplane {mesh}/{name}")
        return node_id(mesh, name)

    def dataplane(self, mesh: str, name: str) -> DataplaneView:
        record = self.reconciler.records.get(self._check_dataplane(mesh, name))
        if record is None:
            return DataplaneView(mesh, name, None, ())
        return DataplaneView(mesh, name, record.policies, record.listeners)

    def policy_dataplanes(self, kind: Kind, mesh: str, name: str) -> list[str]:
        """Names of the dataplanes of `mesh` that policy `name` of `kind` targets (for a merging kind, wherever
        it is in the merge order), sorted."""
        group = self.reconciler.world.mesh(mesh)
        if group.mesh is None or name not in group.policies.get(kind, {}):
            raise NotFound(f"{kind.name} {mesh}/{name}")
        names = []
        for dataplane in sorted(group.dataplanes):
            record = self.reconciler.records.get(node_id(mesh, dataplane))
            if record is not None and name in record.policies.decision(kind).matched:
                names.append(dataplane)
        return names

    def connected_dataplanes(self, mesh: str) -> dict[str, EnvoyVersion | None]:
        """The dataplanes of `mesh` with an open ADS stream, with the Envoy version each reported. A stream
        whose node names no registered dataplane (not yet, or no longer) does not count."""
        registered = self.reconciler.world.mesh(mesh).dataplanes
        found: dict[str, EnvoyVersion | None] = {}
        for node, version in self.status.connected_versions().items():
            parsed = parse_node_id(node)  # streams are opened only for valid ids (server.py)
            if parsed.mesh == mesh and parsed.name in registered:
                found[parsed.name] = version
        return found

    def dataplane_xds(self, mesh: str, name: str) -> XdsView:
        node = self._check_dataplane(mesh, name)
        return XdsView(node, self.cache.get_snapshot(node), self.status.status(node))
