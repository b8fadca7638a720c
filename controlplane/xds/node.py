"""Node identity: how an ADS stream's `node.id` maps to a proxy (`<mesh>.<name>`).

Responsible for parsing and validating the id exactly as Kuma does (reference/kuma-tracing.md §4.2): split on
the *first* dot, so mesh names cannot contain dots but dataplane names may. Error texts are Kuma's, so users
recognise them. Beyond Kuma, both parts must be what a resource name may be (length and characters, as
`resources/codec.py` validates them), so nothing a client makes up reaches logs, metrics labels or the
cache keys unchecked. Must not: look anything up in the store (an unknown dataplane is not a protocol error; the
stream simply waits until a snapshot for it exists).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from controlplane.errors import ControlPlaneError

MAX_PART_LENGTH: Final = 253
_MESH: Final = re.compile(r"[0-9a-z_-]*")
_NAME: Final = re.compile(r"[0-9a-z_.-]+")


class InvalidNodeId(ControlPlaneError):
    """The node id cannot name a dataplane; the ADS server turns this into INVALID_ARGUMENT."""


@dataclass(frozen=True, slots=True)
class NodeId:
    """A parsed `<mesh>.<name>` node id."""

    mesh: str
    name: str

    def __str__(self) -> str:
        return f"{self.mesh}.{self.name}"


def node_id(mesh: str, name: str) -> str:
    """The node id of dataplane `name` in `mesh` (the one place that formats it)."""
    return str(NodeId(mesh=mesh, name=name))


def parse_node_id(raw: str) -> NodeId:
    """Parse Kuma's `<mesh>.<name>` (Kuma `ParseProxyIdFromString`).

    Like Kuma, an empty mesh part (".name") is accepted; Kuma uses it for zone ingresses. Such a node simply
    never gets a snapshot unless someone sets one for it.
    """
    if not raw:
        raise InvalidNodeId("Envoy ID must not be nil")
    mesh, dot, name = raw.partition(".")
    if not dot:
        raise InvalidNodeId("the name should be provided after the dot")
    if not name:
        raise InvalidNodeId("name must not be empty")
    if len(mesh) > MAX_PART_LENGTH or len(name) > MAX_PART_LENGTH:
        raise InvalidNodeId(f"mesh and name must be at most {MAX_PART_LENGTH} characters long")
    if not _MESH.fullmatch(mesh) or not _NAME.fullmatch(name):
        raise InvalidNodeId("invalid characters: a mesh name may use 0-9, a-z, '-' and '_', a dataplane "
                            "name also '.'")
    return NodeId(mesh=mesh, name=name)
