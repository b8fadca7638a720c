"""The control plane the view tests share: a real `controlplane run` with the docs' Mesh and TrafficTrace
(examples/, applied with the real CLI), a MeshTrace on one proxy, a second mesh without tracing, and fake
proxies (fleet.py) that put every overview category on the page: spans flowing, collector unreachable, no
sampled requests, no stats yet, not traced, offline, plus a NACKed listener with Envoy's error.

Responsible for building that state and waiting (with a deadline) until the API shows it; the tests then
compare the page with the API's answers, never with fixed strings.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from cli_helpers import Server, http_json, run_cli

from .fleet import Fleet, flowing, unreachable, unsampled

ROOT: Final = Path(__file__).resolve().parents[2]
NACK: Final = ("Error adding/updating listener(s) outbound:127.0.0.1:10003: malformed IP address: db.local "
               "(the stand-in Envoy of backend-2 rejects every listener)")
TT_COLLECTOR: Final = "tracing_jaeger-collector"
MT_COLLECTOR: Final = "meshtrace_zipkin"


def _dataplane(mesh: str, name: str, service: str, port: int, protocol: str, outbounds: list[tuple[int, str]]) -> str:
    lines = [f"type: Dataplane\nmesh: {mesh}\nname: {name}\nnetworking:\n  address: 127.0.0.1\n  inbound:",
             f"  - port: {port}\n    servicePort: {port + 1000}\n    tags:\n      kuma.io/service: {service}",
             f"      kuma.io/protocol: {protocol}\n      version: v1"]
    if outbounds:
        lines.append("  outbound:")
        lines += [f"  - port: {p}\n    tags:\n      kuma.io/service: {s}" for p, s in outbounds]
    return "\n".join(lines) + "\n"


MESHTRACE: Final = """type: MeshTrace
name: backend-2-zipkin
mesh: default
spec:
  targetRef:
    kind: Dataplane
    name: backend-2
  default:
    backends:
      - type: Zipkin
        zipkin:
          url: http://jaeger-collector:9411/api/v2/spans
"""
DOCUMENTS: Final = [
    (ROOT / "examples" / "zipkin-mesh.yaml").read_text(),
    (ROOT / "examples" / "trace-all-traffic.yaml").read_text(),
    "type: Mesh\nname: payments\n",
    MESHTRACE,
    _dataplane("default", "frontend-1", "frontend", 20000, "http", [(10001, "backend")]),
    _dataplane("default", "backend-1", "backend", 20010, "http", [(10003, "db")]),
    _dataplane("default", "backend-2", "backend", 20020, "http", [(10003, "db")]),
    _dataplane("default", "db-1", "db", 20030, "tcp", []),
    _dataplane("default", "legacy-1", "legacy", 20040, "http", [(10001, "backend")]),
    _dataplane("payments", "pay-1", "payments", 20050, "http", [(10005, "ledger")]),
    _dataplane("payments", "ledger-1", "ledger", 20060, "http", []),
]
EXPECTED: Final = {"frontend-1": "flowing", "backend-1": "collector unreachable", "backend-2": "no sampled requests",
                   "db-1": "no stats", "legacy-1": "no stats", "pay-1": "not traced", "ledger-1": "not traced"}


@dataclass
class Plane:
    server: Server
    fleet: Fleet

    def get(self, path: str) -> Any:
        status, body = http_json("GET", self.server.url + path)
        assert status == 200, (path, status, body)
        return body

    def items(self, path: str) -> list[dict[str, Any]]:
        body = self.get(path + ("&" if "?" in path else "?") + "size=1000")
        items: list[dict[str, Any]] = body["items"]
        return items


def wait_for(check: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def populate(server: Server) -> Plane:
    applied = run_cli("apply", "-f", "-", url=server.url, stdin="---\n".join(DOCUMENTS))
    assert applied.returncode == 0, applied.stderr
    xds_port = http_json("GET", server.url + "/config")[1]["dpServer"]["port"]
    fleet = Fleet(xds_port)
    fleet.connect("default.frontend-1", stats=flowing("frontend", TT_COLLECTOR))
    fleet.connect("default.backend-1", stats=unreachable("backend", TT_COLLECTOR))
    fleet.connect("default.backend-2", nack=NACK, stats=unsampled("backend", MT_COLLECTOR))
    fleet.connect("default.db-1")
    fleet.connect("payments.pay-1")
    plane = Plane(server, fleet)

    def settled() -> bool:
        verdicts = {i["name"]: i["dataplaneInsight"]["metadata"]["tracing"]["verdict"]
                    for i in plane.items("/dataplanes+insights")}
        states = {i["name"]: i["dataplaneInsight"]["metadata"]["xds"]["state"] for i in plane.items("/dataplanes+insights")}
        return verdicts == EXPECTED and states["backend-2"] == "nacked" and states["frontend-1"] == "acked"
    wait_for(settled, "the fake proxies' verdicts and xDS states")
    return plane


def category(item: dict[str, Any]) -> str:
    """The overview category of a DataplaneOverview, as issue 15 §1 lists them (offline first)."""
    insight = item["dataplaneInsight"]
    if not any("disconnectTime" not in s for s in insight.get("subscriptions", [])):
        return "offline"
    return {"flowing": "flowing", "collector unreachable": "unreachable", "collector rejecting": "rejecting",
            "no sampled requests": "no-sampled", "no traffic": "no-traffic", "no stats": "no-stats",
            "not traced": "not-traced"}[insight["metadata"]["tracing"]["verdict"]]
