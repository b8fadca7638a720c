"""The resource kinds of this control plane: the core kinds (Mesh, Dataplane) and every policy kind.

The one list that registers a kind's descriptor. Generic code (codec, stores, API routes, CLI) iterates it
and looks kinds up here; it never names a policy kind. The order is the order of `export` (meshes first,
policies next, dataplanes last), which is also a valid order to apply them in.
"""

from __future__ import annotations

from typing import Final

from controlplane.policies.meshtrace.api import MESH_TRACE
from controlplane.policies.traffictrace.api import TRAFFIC_TRACE
from controlplane.resources.dataplane import DATAPLANE
from controlplane.resources.kind import KindRegistry
from controlplane.resources.mesh import MESH

KINDS: Final = KindRegistry((MESH, TRAFFIC_TRACE, MESH_TRACE, DATAPLANE))
