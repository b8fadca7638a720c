"""The demo's resources: the docs' zipkin Mesh and TrafficTrace, and a chain of Dataplanes.

`frontend` → `backend` → `db`, all on 127.0.0.1: each Dataplane has an inbound (Envoy port → app port,
`kuma.io/protocol: http`, without which nothing is traced) and, except the last, an outbound to the next
service, which is where its app sends requests. Pure: ports in, documents out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from controlplane.xds.node import node_id

MESH: Final = "default"
HOST: Final = "127.0.0.1"
SERVICES: Final = ("frontend", "backend", "db")
TRACE_BACKEND: Final = "jaeger-collector"

# The docs' YAML as written (examples/zipkin-mesh.yaml, examples/trace-all-traffic.yaml); only the
# collector URL differs.
MESH_YAML: Final = """\
type: Mesh
name: default
tracing:
  defaultBackend: jaeger-collector
  backends:
  - name: jaeger-collector
    type: zipkin
    sampling: 100.0
    url: {url}
"""
TRAFFIC_TRACE_YAML: Final = """\
type: TrafficTrace
name: trace-all-traffic
mesh: default
selectors:
- match:
    kuma.io/service: '*'
backend: jaeger-collector
"""


@dataclass(frozen=True, slots=True)
class Hop:
    """One demo service and its sidecar's ports; ``outbound_port`` is 0 for the last service."""

    service: str
    app_port: int
    inbound_port: int
    outbound_port: int = 0

    @property
    def dataplane_name(self) -> str:
        return f"{self.service}-1"

    @property
    def node_id(self) -> str:
        return node_id(MESH, self.dataplane_name)

    @property
    def inbound_url(self) -> str:
        return f"http://{HOST}:{self.inbound_port}"

    @property
    def outbound_url(self) -> str | None:
        return f"http://{HOST}:{self.outbound_port}" if self.outbound_port else None


def dataplane_document(hop: Hop, next_service: str | None) -> dict[str, object]:
    """The Dataplane of ``hop`` in Kuma's document form, with an outbound to ``next_service`` if any."""
    networking: dict[str, object] = {
        "address": HOST,
        "inbound": [{"port": hop.inbound_port, "servicePort": hop.app_port,
                     "tags": {"kuma.io/service": hop.service, "kuma.io/protocol": "http"}}],
    }
    if next_service is not None:
        networking["outbound"] = [{"port": hop.outbound_port, "tags": {"kuma.io/service": next_service}}]
    return {"type": "Dataplane", "mesh": MESH, "name": hop.dataplane_name, "networking": networking}


def mesh_yaml(collector_url: str) -> str:
    return MESH_YAML.format(url=collector_url)
