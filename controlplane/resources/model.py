"""The in-memory value of a stored resource: kind, mesh, name, the typed spec, and store metadata.

Deliberately free of any store or transport detail: the store persists these, the codec turns them into
Kuma's JSON/YAML, and generation reads `spec`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from google.protobuf.message import Message

from controlplane.resources.generated import mesh_pb2


class Kind(enum.Enum):
    """Resource kinds, valued by Kuma's `type` string."""

    MESH = "Mesh"
    TRAFFIC_TRACE = "TrafficTrace"
    DATAPLANE = "Dataplane"

    @property
    def mesh_scoped(self) -> bool:
        return self is not Kind.MESH

    @property
    def ws_path(self) -> str:
        """Plural path segment used by the HTTP API (`/meshes/{mesh}/traffic-traces`)."""
        return _WS_PATHS[self]

    @property
    def cli_name(self) -> str:
        """Singular name used by the CLI (`controlplane delete traffic-trace NAME`)."""
        return _CLI_NAMES[self]

    def new_spec(self) -> Message:
        return _SPEC_TYPES[self]()

    @classmethod
    def from_type(cls, type_name: str) -> Kind:
        """Kind for a document's `type`; ValueError lists the known types."""
        for kind in cls:
            if kind.value == type_name:
                return kind
        raise ValueError(f'unknown type "{type_name}". Available types: {", ".join(k.value for k in cls)}')

    @classmethod
    def from_ws_path(cls, path: str) -> Kind:
        for kind, ws in _WS_PATHS.items():
            if ws == path:
                return kind
        raise ValueError(path)


_WS_PATHS: Final = {Kind.MESH: "meshes", Kind.TRAFFIC_TRACE: "traffic-traces", Kind.DATAPLANE: "dataplanes"}
_CLI_NAMES: Final = {Kind.MESH: "mesh", Kind.TRAFFIC_TRACE: "traffic-trace", Kind.DATAPLANE: "dataplane"}
_SPEC_TYPES: Final[dict[Kind, type[Message]]] = {
    Kind.MESH: mesh_pb2.Mesh,
    Kind.TRAFFIC_TRACE: mesh_pb2.TrafficTrace,
    Kind.DATAPLANE: mesh_pb2.Dataplane,
}


@dataclass(frozen=True, slots=True)
class ResourceKey:
    """Identity of a resource. `mesh` is "" for Mesh itself (a global kind)."""

    kind: Kind
    mesh: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind.value} {self.mesh + '/' if self.mesh else ''}{self.name}"


@dataclass(frozen=True, slots=True)
class Resource:
    """A resource as stored. `version` is the store's optimistic-concurrency counter (0 = never stored)."""

    key: ResourceKey
    spec: Message
    version: int = 0
    creation_time: datetime | None = None
    modification_time: datetime | None = None

    @property
    def kind(self) -> Kind:
        return self.key.kind

    @property
    def mesh(self) -> str:
        return self.key.mesh

    @property
    def name(self) -> str:
        return self.key.name
