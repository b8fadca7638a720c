"""What one stream is subscribed to for one resource type: wildcard (explicit or legacy) and explicit names.

Responsible for the subscription rules of the xDS spec ("How the client specifies what resources to return",
reference/xds-protocol.md §1.6), as an immutable value with pure transitions, so the tricky wildcard cases
are unit-tested without gRPC. Must not: know about snapshots, nonces or versions.

Legacy wildcard: a type whose requests on the stream have never named any resource is a wildcard
subscription. In SotW this lasts until the first request that names something; from then on an empty list
means "nothing". In delta only the *first* request decides it (empty subscribe list → wildcard); later the
wildcard is changed only by subscribing/unsubscribing "*" explicitly (spec's 4-step delta example).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from controlplane.xds.limits import name_chars

WILDCARD: Final = "*"


@dataclass(frozen=True, slots=True)
class Subscription:
    """Subscription state of one type on one stream.

    `requested` is False until the first request for the type arrives; before that the server sends nothing
    for the type. `legacy_possible` stays True while no SotW request has named a resource. `name_chars` is
    the total length of `names`, kept up to date in O(request) so the stream can bound what a client makes
    it hold (limits.py) without summing a large subscription on every delta request.
    """

    requested: bool = False
    wildcard: bool = False
    names: frozenset[str] = frozenset()
    legacy_possible: bool = True
    name_chars: int = 0

    def selects(self, name: str) -> bool:
        """Does the client want resource `name` (explicitly or through the wildcard)?"""
        return self.wildcard or name in self.names

    def apply_sotw(self, resource_names: Iterable[str]) -> Subscription:
        """SotW: each request carries the full list and replaces the previous one."""
        requested = frozenset(resource_names)
        if not requested and self.legacy_possible:
            # Legacy wildcard: nothing has ever been named on this stream for this type.
            return Subscription(requested=True, wildcard=True, names=frozenset(), legacy_possible=True)
        names = requested - {WILDCARD}
        return Subscription(
            requested=True,
            wildcard=WILDCARD in requested,
            names=names,
            legacy_possible=False,
            name_chars=name_chars(names),
        )

    def apply_delta(self, subscribe: Iterable[str], unsubscribe: Iterable[str]) -> Subscription:
        """Delta: the request carries increments; the first request decides the legacy wildcard."""
        sub = frozenset(subscribe)
        unsub = frozenset(unsubscribe)
        wildcard = self.wildcard
        if not self.requested and not sub:
            wildcard = True  # legacy wildcard, decided once on the first request
        if WILDCARD in sub:
            wildcard = True
        if WILDCARD in unsub:
            wildcard = False
        gained = (sub - {WILDCARD}) - self.names - unsub
        lost = self.names & unsub
        return Subscription(requested=True, wildcard=wildcard, names=(self.names - lost) | gained,
                            legacy_possible=False,
                            name_chars=self.name_chars + name_chars(gained) - name_chars(lost))
