"""ADS streams whose node id names no Dataplane: counted, listed and logged once.

An Envoy started with a bootstrap for a Dataplane that was never applied (or was deleted, or lives in
another control plane's store) connects and then waits forever: no snapshot is ever generated for it, and
Envoy logs nothing wrong. The node id is valid, so this is not a protocol error (node.py); it is an
operator's mistake worth one warning ("Envoy `default.ghost` is connected but no Dataplane default/ghost
exists"), a gauge (`xds_nodes_without_dataplane`) and a list (`GET /unknown-dataplanes`,
`controlplane inspect dataplanes`).

A node is a ghost once it has been connected `GRACE_S` without its Dataplane in the reconciler's mirror:
`dataplane run` registers the Dataplane and starts Envoy at once, and the mirror follows the store a
debounce later, so a younger stream is not judged. `check` runs every `CHECK_INTERVAL_S` (one dict look-up
per connected node); each ghost is logged once per connection, again only after it stopped being one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import structlog

from controlplane.observability import Metrics
from controlplane.resources.dataplane import DATAPLANE
from controlplane.resources.model import ResourceKey
from controlplane.xds.node import InvalidNodeId, NodeId, parse_node_id
from controlplane.xds.observer import StatusRegistry
from controlplane.xds.world import World

log = structlog.get_logger(__name__)

GRACE_S: Final = 2.0
CHECK_INTERVAL_S: Final = 1.0


@dataclass(frozen=True, slots=True)
class Ghost:
    """A connected node without a Dataplane, since `connected_since` (Unix seconds)."""

    node_id: str
    mesh: str
    name: str
    connected_since: float

    @property
    def message(self) -> str:
        return f"Envoy `{self.node_id}` is connected but no Dataplane {self.mesh}/{self.name} exists"


class GhostWatch:
    """Finds ghosts among the connected nodes; `run` checks periodically, logging each one once."""

    def __init__(self, status: StatusRegistry, world: World, metrics: Metrics | None = None, *,
                 clock: Callable[[], float] = time.time, grace_s: float = GRACE_S) -> None:
        self._status, self._world, self._metrics = status, world, metrics
        self._clock = clock
        self._grace_s = grace_s
        self._logged: set[str] = set()
        self._parsed: dict[str, NodeId | None] = {}
        """Node id → parsed, for the connected nodes (checked every second: parse each once)."""

    def ghosts(self, *, with_grace: bool = True) -> list[Ghost]:
        """Connected nodes whose Dataplane does not exist, sorted by node id."""
        now = self._clock()
        found = []
        connected = self._status.connected_nodes()
        if len(self._parsed) > 2 * len(connected) + 1000:
            self._parsed = {n: self._parsed[n] for n in connected if n in self._parsed}
        for node_id in connected:
            node = self._parsed[node_id] if node_id in self._parsed else self._parsed.setdefault(node_id, _parse(node_id))
            if node is None or self._world.get(ResourceKey(DATAPLANE, node.mesh, node.name)) is not None:
                continue
            since = self._status.first_connect_time(node_id)
            if since is None or (with_grace and now - since < self._grace_s):
                continue
            found.append(Ghost(node_id, node.mesh, node.name, since))
        return found

    def check(self) -> list[Ghost]:
        ghosts = self.ghosts()
        current = {g.node_id for g in ghosts}
        for ghost in ghosts:
            if ghost.node_id not in self._logged:
                log.warning("ghost_node", node_id=ghost.node_id, message=ghost.message)
        self._logged = current
        if self._metrics is not None:
            self._metrics.ghost_nodes.set(len(ghosts))
        return ghosts

    async def run(self, interval_s: float = CHECK_INTERVAL_S) -> None:
        while True:
            self.check()
            await asyncio.sleep(interval_s)


def _parse(node_id: str) -> NodeId | None:
    try:
        return parse_node_id(node_id)
    except InvalidNodeId:
        return None
