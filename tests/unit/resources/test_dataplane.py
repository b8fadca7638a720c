"""Dataplane validation against Kuma's `dataplane_validator.go` (release-2.11): IP-only listener and service
addresses, Kuma's tag value character set, the serviceAddress overlap rule, and Kuma's violation order.

Kuma's own test table runs in test_kuma_cases.py; these cases pin the rules it does not exercise (and our
documented extensions). Every case compares the whole ordered list.
"""

from __future__ import annotations

from typing import Any

import pytest

from controlplane.errors import ValidationError, Violation
from controlplane.resources.addresses import is_ip
from controlplane.resources.codec import decode_resource

NOT_IP = "address has to be valid IP address"
SERVICE_NOT_IP = "serviceAddress has to be valid IP address"
OVERLAP = "serviceAddress and servicePort has to differ from address and port"
TAG_VALUE = "tag value must consist of alphanumeric characters, dots, dashes and underscores"
PORT = "port must be in the range [1, 65535]"


def dataplane(address: str = "10.0.0.1", inbound: list[dict[str, Any]] | None = None,
              outbound: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    networking: dict[str, Any] = {"address": address, "inbound": [web()] if inbound is None else inbound}
    if outbound is not None:
        networking["outbound"] = outbound
    return {"type": "Dataplane", "name": "d", "mesh": "m", "networking": networking}


def web(**extra: Any) -> dict[str, Any]:
    return {"port": 8080, "tags": {"kuma.io/service": "web"}, **extra}


def violations(document: dict[str, Any]) -> list[Violation]:
    try:
        decode_resource(document)
    except ValidationError as exc:
        return list(exc.violations)
    return []


CASES: list[tuple[str, dict[str, Any], list[Violation]]] = [
    # Listener addresses must be IPs: Envoy cannot listen on (or route EDS to) a name.
    ("networking.address a domain name", dataplane("web.example.com"), [Violation("networking.address", NOT_IP)]),
    ("networking.address with an IPv6 zone", dataplane("fe80::1%eth0"), [Violation("networking.address", NOT_IP)]),
    ("inbound address a name", dataplane(inbound=[web(address="localhost")]),
     [Violation("networking.inbound[0].address", NOT_IP)]),
    ("outbound address a name", dataplane(outbound=[{"port": 1, "address": "localhost",
                                                     "tags": {"kuma.io/service": "b"}}]),
     [Violation("networking.outbound[0].address", NOT_IP)]),
    # serviceAddress: an IP, as Kuma 2.11 requires (net.ParseIP), not 0.0.0.0/:: (ours), not the listener.
    ("serviceAddress a host name", dataplane(inbound=[web(serviceAddress="app")]),
     [Violation("networking.inbound[0].serviceAddress", SERVICE_NOT_IP)]),
    ("serviceAddress unspecified", dataplane(inbound=[web(serviceAddress="::", servicePort=9000)]),
     [Violation("networking.inbound[0].serviceAddress", "must not be 0.0.0.0 or ::")]),
    ("serviceAddress = networking.address, no servicePort", dataplane(inbound=[web(serviceAddress="10.0.0.1")]),
     [Violation("networking.inbound[0].serviceAddress", OVERLAP)]),
    ("serviceAddress:servicePort = networking.address:port",
     dataplane(inbound=[web(serviceAddress="10.0.0.1", servicePort=8080)]),
     [Violation("networking.inbound[0].serviceAddress", OVERLAP)]),
    ("serviceAddress = inbound address", dataplane(inbound=[web(address="10.0.0.2", serviceAddress="10.0.0.2")]),
     [Violation("networking.inbound[0].serviceAddress", OVERLAP)]),
    ("all three addresses equal: Kuma reports the overlap twice",
     dataplane(inbound=[web(address="10.0.0.1", serviceAddress="10.0.0.1")]),
     [Violation("networking.inbound[0].serviceAddress", OVERLAP),
      Violation("networking.inbound[0].serviceAddress", OVERLAP)]),
    # Dataplane tag values: Kuma's character set, without `/` (selectors keep it).
    ("inbound tag value with a slash", dataplane(inbound=[web(tags={"kuma.io/service": "web/v1"})]),
     [Violation('networking.inbound[0].tags["kuma.io/service"]', TAG_VALUE)]),
    ("outbound tag value with a star", dataplane(outbound=[{"port": 1, "tags": {"kuma.io/service": "*"}}]),
     [Violation('networking.outbound[0].tags["kuma.io/service"]', TAG_VALUE)]),
    # Order: Kuma's, with our "already used" after the inbound's own violations.
    ("Kuma's order", dataplane("", inbound=[
        {"port": 0, "servicePort": 70000, "serviceAddress": "app", "address": "web",
         "tags": {"kuma.io/protocol": "udp", "bad key!": "a/b", "version": ""}},
        web(), web(tags={"kuma.io/service": "other"}),
    ], outbound=[{"port": 0, "address": "x", "tags": {"version": "v/1", "": "v"}}]), [
        Violation("networking.address", "address can't be empty"),
        Violation("networking.inbound[0].port", PORT),
        Violation("networking.inbound[0].servicePort", PORT),
        Violation("networking.inbound[0].serviceAddress", SERVICE_NOT_IP),
        Violation("networking.inbound[0].address", NOT_IP),
        Violation('networking.inbound[0].tags["kuma.io/protocol"]',
                  'tag "kuma.io/protocol" has an invalid value "udp". Allowed values: grpc, http, http2, kafka, tcp'),
        Violation('networking.inbound[0].tags["bad key!"]',
                  "tag name must consist of alphanumeric characters, dots, dashes, slashes and underscores"),
        Violation('networking.inbound[0].tags["bad key!"]', TAG_VALUE),
        Violation('networking.inbound[0].tags["version"]', "tag value must be non-empty"),
        Violation('networking.inbound[0].tags["kuma.io/service"]', "tag has to exist"),
        Violation("networking.inbound[2]", ":8080 is already used by networking.inbound[1]"),
        Violation("networking.outbound[0].port", PORT),
        Violation("networking.outbound[0].address", NOT_IP),
        Violation("networking.outbound[0].tags", "tag name must be non-empty"),
        Violation('networking.outbound[0].tags["version"]', TAG_VALUE),
        Violation("networking.outbound[0].tags", 'mandatory tag "kuma.io/service" is missing'),
    ]),
    ("no inbound comes before the address", dataplane("", inbound=[]), [
        Violation("networking", "has to contain at least one inbound interface or gateway"),
        Violation("networking.address", "address can't be empty"),
    ]),
]


@pytest.mark.parametrize(("document", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_violations(document: dict[str, Any], expected: list[Violation]) -> None:
    assert violations(document) == expected


VALID = [
    ("IPv4, IPv6 and mapped addresses", dataplane("0:0:0:0:0:FFFF:C0A8:0001", inbound=[web(address="::1")],
                                                  outbound=[{"port": 1, "address": "::1",
                                                             "tags": {"kuma.io/service": "b"}}])),
    ("serviceAddress = address on another port", dataplane(inbound=[web(serviceAddress="10.0.0.1", servicePort=9000)])),
    ("protocols Kuma knows but does not list", dataplane(inbound=[
        web(tags={"kuma.io/service": "a", "kuma.io/protocol": "TLS"}),
        web(port=8081, tags={"kuma.io/service": "b", "kuma.io/protocol": "mysql"})])),
    ("tag values with dots, dashes, underscores and colons", dataplane(inbound=[
        web(tags={"kuma.io/service": "web_v1.2-a:b"})])),
]


@pytest.mark.parametrize("document", [v[1] for v in VALID], ids=[v[0] for v in VALID])
def test_valid(document: dict[str, Any]) -> None:
    assert violations(document) == []


@pytest.mark.parametrize(("host", "expected"), [
    ("10.0.0.1", True), ("::1", True), ("::ffff:10.0.0.1", True), ("fe80::1%eth0", False),
    ("010.0.0.1", False), ("[::1]", False), ("web", False), ("", False),
])
def test_is_ip_is_gos_parse_ip(host: str, expected: bool) -> None:
    assert is_ip(host) is expected
