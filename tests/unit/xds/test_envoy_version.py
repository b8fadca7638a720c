"""Reading the Envoy version from a Node, and the supported window (README "Envoy versions")."""

from __future__ import annotations

import pytest
from envoy.config.core.v3 import base_pb2
from envoy.type.v3 import semantic_version_pb2

from controlplane.xds.envoy_version import (
    MINIMUM_SUPPORTED,
    EnvoyVersion,
    UnsupportedEnvoy,
    check_supported,
    envoy_version_of,
)


def node(name: str = "envoy", version: tuple[int, int, int] | None = (1, 36, 2)) -> base_pb2.Node:
    """A Node as Envoy sends it: `user_agent_name` and `user_agent_build_version.version` are Envoy's own."""
    message = base_pb2.Node(id="default.web-1", user_agent_name=name)
    if version is not None:
        message.user_agent_build_version.version.CopyFrom(semantic_version_pb2.SemanticVersion(
            major_number=version[0], minor_number=version[1], patch=version[2]))
        message.user_agent_build_version.metadata.update({"revision.status": "Clean", "build.type": "RELEASE"})
    return message


@pytest.mark.parametrize(("message", "expected"), [
    (node(), EnvoyVersion(1, 36, 2)),
    (node(version=(1, 40, 0)), EnvoyVersion(1, 40, 0)),
    (node(name="grpc-python"), None),
    (node(version=None), None),
    (node(version=(0, 0, 0)), None),
    (base_pb2.Node(id="default.web-1"), None),
], ids=["envoy-1.36.2", "envoy-1.40.0", "not-envoy", "no-build-version", "zero", "bare-node"])
def test_version_of_node(message: base_pb2.Node, expected: EnvoyVersion | None) -> None:
    assert envoy_version_of(message) == expected


def test_versions_order_numerically() -> None:
    assert EnvoyVersion(1, 9, 9) < EnvoyVersion(1, 36) < EnvoyVersion(1, 36, 2) < EnvoyVersion(1, 40) < EnvoyVersion(2, 0)
    assert (str(EnvoyVersion(1, 36, 2)), EnvoyVersion(1, 36, 2).release) == ("1.36.2", "1.36")


@pytest.mark.parametrize("version", [MINIMUM_SUPPORTED, EnvoyVersion(1, 36, 4), EnvoyVersion(1, 41, 0), None],
                         ids=["minimum", "patch", "newer-than-tested", "unknown"])
def test_supported(version: EnvoyVersion | None) -> None:
    check_supported(version)


@pytest.mark.parametrize("version", [EnvoyVersion(1, 35, 9), EnvoyVersion(1, 20, 0), EnvoyVersion(0, 9, 0)])
def test_older_than_the_window_names_the_minimum(version: EnvoyVersion) -> None:
    with pytest.raises(UnsupportedEnvoy) as raised:
        check_supported(version)
    assert str(raised.value) == (f"Envoy {version} is older than the minimum supported 1.36 "
                                 "(supported: 1.36 to 1.40); upgrade Envoy")
