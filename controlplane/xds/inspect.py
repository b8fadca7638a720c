"""Kuma-style inspection: what the control plane decided and generated for a proxy, as typed values.

Reads only what the reconciler already computed and published: its per-proxy records (every policy
plugin's decision, the per-listener notes of the published snapshot) and the snapshot cache, plus the ADS
status registry, the span flows the stats sink fills and the ghost watch. Nothing is re-derived here, so the
answer cannot disagree with the config that was sent, and a request costs a few look-ups (or, for a
policy's dataplanes or a mesh's span flow, one pass over the mesh's records) instead of a mesh context
build. Turning these values into HTTP bodies is the API's job (api/inspect_views.py, api/insights_views.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from controlplane.errors import NotFound
from controlplane.policies.plugins import ProxyPolicies
from controlplane.resources.dataplane import DATAPLANE
from controlplane.resources.kind import Kind
from controlplane.resources.mesh import MESH
from controlplane.resources.model import Resource, ResourceKey
from controlplane.spans.verdict import Verdict, judge
from controlplane.xds.admin_tunnel import AdminAnswer, AdminTunnels
from controlplane.xds.attachments import Attachment, policy_attachments
from controlplane.xds.cache import SnapshotCache
from controlplane.xds.envoy_version import EnvoyVersion
from controlplane.xds.generate.notes import ListenerNote
from controlplane.xds.ghosts import Ghost, GhostWatch
from controlplane.xds.node import node_id, parse_node_id
from controlplane.xds.observer import NodeStatus, StatusRegistry, SubscriptionStatus
from controlplane.xds.preview import ResourceEffect, preview
from controlplane.xds.reconciler import Reconciler
from controlplane.xds.service_graph import ServiceGraph, build_service_graph
from controlplane.xds.snapshot import Snapshot
from controlplane.xds.span_flows import SpanFlows


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
    published: bool = True
    """False: `snapshot` was generated for this view (the proxy is not connected), not sent to anyone."""


@dataclass(frozen=True, slots=True)
class DataplaneOverview:
    """Kuma's DataplaneOverview: the Dataplane, its last ADS subscriptions, and the verdict on its spans."""

    dataplane: Resource
    subscriptions: tuple[SubscriptionStatus, ...]
    spans: Verdict

    @property
    def online(self) -> bool:
        return any(s.online for s in self.subscriptions)


@dataclass(frozen=True, slots=True)
class MeshSpans:
    """A mesh's proxies with their verdicts, sorted by name (grouped per backend by the view)."""

    mesh: str
    verdicts: tuple[tuple[str, Verdict], ...]


class XdsInspector:
    def __init__(self, reconciler: Reconciler, cache: SnapshotCache, status: StatusRegistry,
                 flows: SpanFlows | None = None, ghosts: GhostWatch | None = None,
                 tunnels: AdminTunnels | None = None) -> None:
        self.reconciler, self.cache, self.status = reconciler, cache, status
        self.tunnels = tunnels if tunnels is not None else AdminTunnels()
        self.flows = flows if flows is not None else SpanFlows(reconciler.records)
        self.ghost_watch = ghosts if ghosts is not None else GhostWatch(status, reconciler.world)

    def _check_dataplane(self, mesh: str, name: str) -> str:
        if self.reconciler.world.get(ResourceKey(DATAPLANE, mesh, name)) is None:
            raise NotFound(f"dataplane {mesh}/{name}")
        return node_id(mesh, name)

    def dataplane(self, mesh: str, name: str) -> DataplaneView:
        node = self._check_dataplane(mesh, name)
        record = self.reconciler.records.get(node)
        if record is None:
            return DataplaneView(mesh, name, None, ())
        if record.generation is None:  # not connected, so not generated: what it would get now
            generation = self.reconciler.unpublished(node)
            return DataplaneView(mesh, name, record.policies, generation.listeners if generation else ())
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

    def policy_attachments(self, kind: Kind, mesh: str, name: str) -> list[Attachment]:
        """Where the policy applies, is displaced by another kind, or is outranked (xds/attachments.py)."""
        group = self.reconciler.world.mesh(mesh)
        policy = group.policies.get(kind, {}).get(name)
        if group.mesh is None or policy is None:
            raise NotFound(f"{kind.name} {mesh}/{name}")
        return policy_attachments(kind, policy, group.mesh, group.dataplanes.values(), self.reconciler.records)

    def service_graph(self, mesh: str) -> ServiceGraph:
        """The mesh's services, their dependencies and where tracing works (xds/service_graph.py)."""
        group = self.reconciler.world.mesh(mesh)
        if group.mesh is None:
            raise NotFound(f"mesh {mesh}")
        nodes = [node_id(mesh, name) for name in group.dataplanes]
        verdicts = dict(self.flows.verdicts(nodes))
        online = [node for node in nodes if self.status.is_connected(node)]
        return build_service_graph(mesh, group.dataplanes.values(), self.reconciler.records, verdicts, online)

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
        """The published snapshot, or for a proxy that is not connected (and so has none: proxies are
        generated when they connect) the one it would get now, marked unpublished."""
        node = self._check_dataplane(mesh, name)
        snapshot = self.cache.get_snapshot(node)
        if snapshot is not None:
            return XdsView(node, snapshot, self.status.status(node))
        generation = self.reconciler.unpublished(node)
        if generation is None:
            return XdsView(node, None, self.status.status(node))
        built = Snapshot.build({t: generation.entries(t) for t in generation.changed_types})
        return XdsView(node, built, self.status.status(node), published=False)


    def spans(self, mesh: str, name: str) -> Verdict:
        """The verdict on the dataplane's span flow (its policy decision and its Envoy's reports)."""
        return self.flows.verdict(self._check_dataplane(mesh, name))

    def mesh_spans(self, mesh: str) -> MeshSpans:
        group = self.reconciler.world.mesh(mesh)
        if group.mesh is None:
            raise NotFound(f"mesh {mesh}")
        nodes = [node_id(mesh, name) for name in sorted(group.dataplanes)]
        verdicts = dict(self.flows.verdicts(nodes))
        return MeshSpans(mesh, tuple((name, verdicts[node_id(mesh, name)]) for name in sorted(group.dataplanes)))

    def dataplane_overviews(self, mesh: str | None = None) -> list[DataplaneOverview]:
        """Every Dataplane (of `mesh`, or of every mesh), sorted by mesh and name."""
        world = self.reconciler.world
        if mesh is not None and world.get(ResourceKey(MESH, "", mesh)) is None:
            raise NotFound(f"mesh {mesh}")
        meshes = [mesh] if mesh is not None else world.mesh_names()
        now = self.flows.now()
        out = []
        for name in meshes:
            for dataplane in sorted(world.mesh(name).dataplanes.values(), key=lambda r: r.name):
                out.append(self._overview(dataplane, now))
        return out

    def dataplane_overview(self, mesh: str, name: str) -> DataplaneOverview:
        resource = self.reconciler.world.get(ResourceKey(DATAPLANE, mesh, name))
        if resource is None:
            raise NotFound(f"dataplane {mesh}/{name}")
        return self._overview(resource, self.flows.now())

    def _overview(self, dataplane: Resource, now: float) -> DataplaneOverview:
        node = node_id(dataplane.mesh, dataplane.name)
        record = self.reconciler.records.get(node)
        verdict = judge(record.policies if record is not None else None, self.flows.flow(node), now)
        return DataplaneOverview(dataplane, self.status.subscriptions(node), verdict)

    async def envoy_admin(self, mesh: str, name: str, view: str) -> AdminAnswer:
        """What the dataplane's Envoy itself holds (`config-dump`, `stats`, `clusters`), through its runner's
        admin tunnel (TunnelUnavailable / TunnelTimeout when there is none or it does not answer)."""
        return await self.tunnels.fetch(self._check_dataplane(mesh, name), view)

    async def preview(self, batch: Sequence[Resource]) -> list[ResourceEffect]:
        """Which proxies' tracing each resource of `batch` would change (xds/preview.py), off the event loop
        on a copy of the mirror taken on it, so the reconciler keeps mirroring meanwhile."""
        world = self.reconciler.world.overlay({self.reconciler.world.mesh_of(r.key) for r in batch})
        return await asyncio.to_thread(preview, world, list(batch))

    def ghosts(self) -> list[Ghost]:
        """Connected Envoys whose node id names no Dataplane (every one, however recently connected)."""
        return self.ghost_watch.ghosts(with_grace=False)

