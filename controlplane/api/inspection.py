"""The seam between the HTTP API and the xDS side for Kuma-style inspection endpoints.

The API knows only this Protocol; `controlplane/xds/inspect.py` implements it over the reconciler's records,
the snapshot cache and the ADS status. It returns typed values; `inspect_views.py` turns them into bodies.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from controlplane.resources.kind import Kind
from controlplane.resources.model import Resource
from controlplane.spans.verdict import Verdict
from controlplane.xds.admin_tunnel import AdminAnswer
from controlplane.xds.attachments import Attachment
from controlplane.xds.envoy_version import EnvoyVersion
from controlplane.xds.ghosts import Ghost
from controlplane.xds.inspect import DataplaneOverview, DataplaneView, MeshSpans, XdsView
from controlplane.xds.preview import ResourceEffect
from controlplane.xds.service_graph import ServiceGraph


class Inspector(Protocol):
    def dataplane(self, mesh: str, name: str) -> DataplaneView:
        """Every policy plugin's decision for the dataplane, and its generated listeners."""
        ...

    def policy_dataplanes(self, kind: Kind, mesh: str, name: str) -> list[str]:
        """Dataplanes on which the policy decides."""
        ...

    def policy_attachments(self, kind: Kind, mesh: str, name: str) -> list[Attachment]:
        """Dataplanes the policy applies to, is displaced on (another kind decides) or is outranked on."""
        ...

    def service_graph(self, mesh: str) -> ServiceGraph:
        """The mesh's services, their outbound dependencies, and where tracing works."""
        ...

    def connected_dataplanes(self, mesh: str) -> dict[str, EnvoyVersion | None]:
        """The mesh's dataplanes with an open ADS stream, and the Envoy version each reported."""
        ...

    def dataplane_xds(self, mesh: str, name: str) -> XdsView:
        """Config last published for the proxy, with what its stream was sent, ACKed and NACKed."""
        ...

    def dataplane_overviews(self, mesh: str | None = None) -> list[DataplaneOverview]:
        """Kuma's DataplaneOverviews of a mesh (or of all meshes), sorted by mesh and name."""
        ...

    def dataplane_overview(self, mesh: str, name: str) -> DataplaneOverview:
        ...

    def ghosts(self) -> list[Ghost]:
        """Connected Envoys whose node id names no Dataplane."""
        ...

    def spans(self, mesh: str, name: str) -> Verdict:
        """The verdict on the dataplane's span flow."""
        ...

    def mesh_spans(self, mesh: str) -> MeshSpans:
        """Every dataplane of the mesh with its span-flow verdict."""
        ...

    async def envoy_admin(self, mesh: str, name: str, view: str) -> AdminAnswer:
        """The dataplane's Envoy's own config dump, stats or clusters (through its runner's admin tunnel)."""
        ...

    async def preview(self, batch: Sequence[Resource]) -> list[ResourceEffect]:
        """What each resource of the batch, applied in order, would change in every proxy's tracing."""
        ...
