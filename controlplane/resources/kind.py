"""The resource kind descriptor: everything generic code needs to know about one resource type.

Kuma's `ResourceTypeDescriptor` (`pkg/core/resources/model/resource.go`): the codec, the HTTP API routes,
the CLI (`get`/`delete` names and tables) and the stores all work from a `Kind`, never from a per-kind table
of their own, so adding a kind is one descriptor next to its schema plus its entry in `registry.py`
(docs/architecture.md, "Adding a policy kind"). Descriptors are immutable module constants compared by
identity.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from google.protobuf.message import Message

from controlplane.errors import Violation

if TYPE_CHECKING:
    from controlplane.resources.model import Resource

Document = dict[str, object]
Item = Mapping[str, object]


@dataclass(frozen=True, slots=True)
class Column:
    """One column of `controlplane get` tables: a header and how to print it from a resource's JSON form.
    `now` is passed in so the functions stay pure (AGE)."""

    header: str
    value: Callable[[Item, datetime], str]


def _no_normalization(document: Document) -> list[Violation]:
    return []


def _no_schema(document: Document) -> list[Violation]:
    return []


def _no_canonicalization(spec: Document) -> None:
    return None


def _no_warnings(spec: Message, mesh: Resource) -> list[str]:
    return []


@dataclass(frozen=True, slots=True, eq=False)
class Kind:
    """One resource type. `name` is Kuma's `type` string (`TrafficTrace`)."""

    name: str
    ws_path: str
    """Plural path segment of the HTTP API (`/meshes/{mesh}/traffic-traces`)."""
    singular: str
    """CLI name of one resource (`controlplane delete traffic-trace NAME`)."""
    plural: str
    """CLI name of the list (`controlplane get traffic-traces`)."""
    mesh_scoped: bool
    spec_type: type[Message]
    validate: Callable[[Message], list[Violation]]
    """Every violation of Kuma's rules for a structurally valid spec, in Kuma's order."""
    columns: tuple[Column, ...]
    schema: Callable[[Document], list[Violation]] = _no_schema
    """A first validation layer on the raw document (Kuma's OpenAPI schema of its new policies); when it
    finds anything, only that is reported, as Kuma does."""
    normalize: Callable[[Document], list[Violation]] = _no_normalization
    """Rewrite the docs' short forms into the canonical form (or apply defaults), in place, before parsing."""
    canonicalize: Callable[[Document], None] = _no_canonicalization
    """Sort map fields of an encoded spec, in place, so output is the same from every store."""
    warnings: Callable[[Message, Resource], list[str]] = _no_warnings
    """Warnings for a valid spec that will not do anything as its mesh stands (shown by the API and `apply`)."""
    policy: bool = False
    """A policy kind (selects proxies, has a plugin in controlplane/policies/)."""
    target_ref: bool = False
    """A policy selecting proxies with a top-level `targetRef` (Kuma's new policies, `isTargetRef`)."""

    @property
    def value(self) -> str:
        """Kuma's type string; kept under this name because the stores persist it."""
        return self.name

    @property
    def singular_display_name(self) -> str:
        """`Traffic Trace`: Kuma's display name, the type name split into words."""
        return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", self.name)

    @property
    def plural_display_name(self) -> str:
        """`Traffic Traces`, `Meshes` (Kuma's `_resources` names and kumactl's `inspect meshes` headers)."""
        words = self.singular_display_name
        return words + ("es" if words.endswith(("s", "sh", "ch", "x", "z")) else "s")

    def new_spec(self) -> Message:
        return self.spec_type()

    def __repr__(self) -> str:
        return f"Kind({self.name})"


class KindRegistry:
    """The kinds of this control plane, looked up by Kuma type, API path segment or CLI name."""

    def __init__(self, kinds: Sequence[Kind]) -> None:
        self._kinds = tuple(kinds)
        self._by_type = {kind.name: kind for kind in self._kinds}
        self._by_ws = {kind.ws_path: kind for kind in self._kinds}
        if len(self._by_type) != len(self._kinds) or len(self._by_ws) != len(self._kinds):
            raise ValueError("two kinds share a type name or an API path")

    def __iter__(self) -> Iterator[Kind]:
        return iter(self._kinds)

    def __len__(self) -> int:
        return len(self._kinds)

    def all(self) -> tuple[Kind, ...]:
        return self._kinds

    def policies(self) -> tuple[Kind, ...]:
        return tuple(kind for kind in self._kinds if kind.policy)

    def by_type(self, type_name: str) -> Kind:
        """Kind for a document's `type`; ValueError lists the known types."""
        found = self._by_type.get(type_name)
        if found is None:
            known = ", ".join(kind.name for kind in self._kinds)
            raise ValueError(f'unknown type "{type_name}". Available types: {known}')
        return found

    def by_ws_path(self, path: str) -> Kind:
        found = self._by_ws.get(path)
        if found is None:
            raise ValueError(path)
        return found

    def ws_paths(self) -> tuple[str, ...]:
        return tuple(self._by_ws)
