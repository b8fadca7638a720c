"""`controlplane inspect dataplane` names the connected Envoy's version next to the xDS variant."""

from __future__ import annotations

import pytest

from controlplane.cli.inspect import render_dataplane

POLICIES = {"dataplane": {"mesh": "default", "name": "web-1"}, "tracing": {"enabled": False, "message": "m"},
            "listeners": []}


@pytest.mark.parametrize(("xds", "line"), [
    ({"connected": True, "variant": "sotw", "envoyVersion": "1.36.2", "types": {}},
     "  xDS: connected (sotw, Envoy 1.36.2)"),
    ({"connected": True, "variant": "delta", "envoyVersion": None, "types": {}}, "  xDS: connected (delta)"),
    ({"connected": False, "variant": None, "envoyVersion": None, "types": {}}, "  xDS: not connected"),
], ids=["envoy", "client-without-version", "not-connected"])
def test_xds_line(xds: dict[str, object], line: str) -> None:
    assert render_dataplane(POLICIES, xds).splitlines()[-1] == line
