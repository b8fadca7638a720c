"""Backend-neutral rules every store applies, kept in one place so memory and sqlite cannot drift apart.

Covers argument checks (a key that fits its kind, a spec of the kind's message type, sane paging), the
timestamp rule (UTC, microsecond resolution, modification_time strictly advancing) and the order of the
DELETED changes a Mesh delete emits. Input validation against Kuma's rules is not done here: the API
validates before it writes, and a store only rejects what would corrupt its own data (with ValueError,
since those are programming errors, not user errors).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Final

from google.protobuf.message import Message

from controlplane.resources.labels import Labels, frozen
from controlplane.resources.model import Resource, ResourceKey

_TICK: Final = timedelta(microseconds=1)
TOKEN_ID: Final = re.compile(r"^[0-9a-f]{32}\Z")
r"""A token id (`jti`): 32 lowercase hex digits. `\Z`, not `$`, which would accept a trailing newline."""


def check_resource(resource: Resource) -> None:
    """Reject a resource whose key or spec does not fit its kind."""
    check_key(resource.key)
    expected = resource.kind.new_spec().DESCRIPTOR.full_name
    actual = resource.spec.DESCRIPTOR.full_name
    if actual != expected:
        raise ValueError(f"{resource.key}: spec is {actual}, expected {expected}")
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in resource.labels.items()):
        raise ValueError(f"{resource.key}: labels must map strings to strings")


def check_key(key: ResourceKey) -> None:
    if not key.name:
        raise ValueError(f"{key.kind.value}: empty name")
    if key.kind.mesh_scoped and not key.mesh:
        raise ValueError(f"{key}: a {key.kind.value} needs a mesh")
    if not key.kind.mesh_scoped and key.mesh:
        raise ValueError(f"{key}: a {key.kind.value} is global, its mesh must be empty")


def check_page(offset: int, size: int | None) -> None:
    if offset < 0:
        raise ValueError(f"offset must be >= 0, got {offset}")
    if size is not None and size < 0:
        raise ValueError(f"size must be >= 0, got {size}")


def utc_now() -> datetime:
    return datetime.now(UTC)


def create_times(resource: Resource) -> tuple[datetime, datetime]:
    """(creation_time, modification_time) for a new row: now, unless the resource carries its own.

    Resources decoded from user input carry none. `controlplane import --store` passes the exported times so
    a move between stores keeps creationTime, which policy ranking uses to break ties (kuma-tracing.md §2.3).
    """
    now = utc_now()
    created = resource.creation_time or now
    return created, max(resource.modification_time or created, created)


def next_modification_time(previous: datetime) -> datetime:
    """Now, but strictly after `previous`, so an update always advances modification_time.

    Two writes inside one microsecond (or a clock step backwards) would otherwise leave it unchanged.
    """
    return max(utc_now(), previous + _TICK)


def copy_spec(spec: Message) -> Message:
    """A private copy, so callers mutating their message cannot change what a store holds, or vice versa."""
    copy = type(spec)()
    copy.CopyFrom(spec)
    return copy


def copy_labels(labels: Labels) -> Labels:
    """A private, read-only copy of a resource's user labels, keys sorted (so every store returns them in
    the same order)."""
    return frozen(labels)


def cascade_order(key: ResourceKey) -> tuple[str, str]:
    """Sort key for the resources removed with a Mesh: by kind (Kuma's type name), then name.

    Both backends emit the DELETED changes in this order and the Mesh's own DELETED change last, so a
    watcher never sees a resource outlive its mesh.
    """
    return (key.kind.value, key.name)


def check_token_id(token_id: str) -> None:
    """Reject anything but a token id, so a revocation can never store a partial or foreign value."""
    if not TOKEN_ID.match(token_id):
        raise ValueError(f"not a token id: {token_id!r}")
