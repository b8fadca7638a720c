"""The seam between the HTTP API and the xDS side for Kuma-style inspection endpoints.

The API only knows this Protocol; `controlplane/xds/inspect.py` implements it over the store, the policy
functions and the snapshot cache. Returning plain JSON-ready dicts keeps the API free of xDS types.
"""

from __future__ import annotations

from typing import Protocol


class Inspector(Protocol):
    async def dataplane_policies(self, mesh: str, name: str) -> dict[str, object]:
        """Matched TrafficTrace, effective backend and sampling, or why there is none."""
        ...

    async def traffic_trace_dataplanes(self, mesh: str, name: str) -> dict[str, object]:
        """Dataplanes the TrafficTrace applies to."""
        ...

    async def dataplane_xds(self, mesh: str, name: str) -> dict[str, object]:
        """Config last sent to the proxy per type, with ACKed version and last NACK message."""
        ...
