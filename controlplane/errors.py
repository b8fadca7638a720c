"""The one exception hierarchy of the control plane.

Lower layers raise these; exactly one place maps them to an outcome: the API middleware
(`controlplane/api/errors.py`) turns them into Kuma's `{title, details, causes}` bodies, the CLI prints them,
the reconciler logs a GenerationError and keeps the previous snapshot. Nothing else builds error bodies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Violation:
    """One problem with a resource: a Kuma field path (`tracing.backends[0].name`) and Kuma's exact message."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class ControlPlaneError(Exception):
    """Base class: every error the control plane raises on purpose."""


class ValidationError(ControlPlaneError):
    """Input that breaks the schema or Kuma's rules; carries every violation, not only the first."""

    def __init__(self, violations: Sequence[Violation], details: str = "Resource is not valid") -> None:
        self.violations: tuple[Violation, ...] = tuple(violations)
        self.details = details
        super().__init__("; ".join(str(v) for v in self.violations) or details)


class NotFound(ControlPlaneError):
    """The resource (or its mesh) does not exist."""


class MeshNotFound(NotFound):
    """create() of a mesh-scoped resource whose Mesh does not exist (checked in the store's own transaction,
    so a resource cannot slip in while its mesh is being deleted)."""

    def __init__(self, mesh: str) -> None:
        super().__init__(f"mesh of name {mesh} is not found")
        self.mesh = mesh


class AlreadyExists(ControlPlaneError):
    """create() of a resource that is already stored."""


class Conflict(ControlPlaneError):
    """Optimistic concurrency failure: the stored version is not the one the writer expected."""


class StoreUnavailable(ControlPlaneError):
    """The store cannot be reached or read (database down, corrupt, locked); the API maps it to 503."""


class StoreLocked(StoreUnavailable):
    """The SQLite file is held by another process (`store/lock.py`): SQLite has one owner at a time."""

    def __init__(self, path: str, pid: int | None) -> None:
        holder = f"pid {pid}" if pid is not None else "pid unknown"
        super().__init__(f"sqlite database {path} is in use by another process ({holder})")
        self.path = path
        self.pid = pid


class GenerationError(ControlPlaneError):
    """Building Envoy configuration for one proxy failed; the previous snapshot stays in place."""

    def __init__(self, generator: str, proxy: str, cause: BaseException) -> None:
        self.generator = generator
        self.proxy = proxy
        super().__init__(f"generator {generator} failed for proxy {proxy}: {cause}")
