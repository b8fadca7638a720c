"""The seam between the HTTP API and the xDS side for Kuma-style inspection endpoints.

The API knows only this Protocol; `controlplane/xds/inspect.py` implements it over the reconciler's records,
the snapshot cache and the ADS status. It returns typed values; `inspect_views.py` turns them into bodies.
"""

from __future__ import annotations

from typing import Protocol

from controlplane.resources.kind import Kind
from controlplane.xds.envoy_version import EnvoyVersion
from controlplane.xds.inspect import DataplaneView, XdsView


class Inspector(Protocol):
    def dataplane(self, mesh: str, name: str) -> DataplaneView:
        """Every policy plugin's decision for the dataplane, and its generated listeners."""
        ...

    def policy_dataplanes(self, kind: Kind, mesh: str, name: str) -> list[str]:
        """Dataplanes on which the policy decides."""
        ...

    def connected_dataplanes(self, mesh: str) -> dict[str, EnvoyVersion | None]:
        """The mesh's dataplanes with an open ADS stream, and the Envoy version each reported."""
        ...

    def dataplane_xds(self, mesh: str, name: str) -> XdsView:
        """Config last published for the proxy, with what its stream was sent, ACKed and NACKed."""
        ...
