"""The in-memory value of a stored resource: kind, mesh, name, the typed spec, and store metadata.

Kinds are descriptors (`kind.py`); the registry of this control plane's kinds is `registry.py`.

Deliberately free of any store or transport detail: the store persists these, the codec turns them into
Kuma's JSON/YAML, and generation reads `spec`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType

from google.protobuf.message import Message

from controlplane.resources.kind import Kind


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
    labels: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    """The user's labels (Kuma 2.x resource labels), without the computed ones such as `kuma.io/mesh`."""

    @property
    def kind(self) -> Kind:
        return self.key.kind

    @property
    def mesh(self) -> str:
        return self.key.mesh

    @property
    def name(self) -> str:
        return self.key.name
