"""Browser attacks on the localhost-is-admin default (issue 11 §3): DNS rebinding and CSRF, with raw requests.

The server is the real app with auth on and localhost as admin (the default), on 127.0.0.1: exactly what a
web page in a browser on the control plane's host can reach. Every hostile request is refused with a Kuma
body and changes nothing: the store is compared whole before and after, and no token or revocation is
issued. The legitimate forms (the CLI's requests, a same-origin page such as the coming /gui) still work.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from aiohttp import web
from raw_http import RawReply, raw_request

from controlplane.api.app import create_app
from controlplane.api.keys import ApiAuth
from controlplane.api.origin import AllowedHosts
from controlplane.auth.keys import generate_signing_key
from controlplane.auth.tokens import Tokens
from controlplane.observability import Metrics
from controlplane.resources.codec import decode_resource, encode_resource
from controlplane.resources.registry import KINDS
from controlplane.store.memory import MemoryStore

MESH = json.dumps({"type": "Mesh", "name": "default"}).encode()
TOKEN_REQUEST = json.dumps({"validFor": "1h"}).encode()
REVOCATION = json.dumps({"id": "3" * 32}).encode()
JSON = {"Content-Type": "application/json"}


@dataclass
class Served:
    port: int
    store: MemoryStore
    tokens: Tokens
    metrics: Metrics

    def refusals(self, reason: str) -> float:
        return self.metrics.registry.get_sample_value("api_auth_failures_total", {"reason": reason}) or 0.0

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def state(self) -> tuple[object, ...]:
        resources = [encode_resource(r) for kind in KINDS for r in (await self.store.list(kind)).items]
        return (resources, (await self.store.revoked_tokens_since(0)).token_ids)


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    store, metrics = MemoryStore(), Metrics()
    tokens = Tokens(generate_signing_key())
    app = create_app(store, metrics, auth=ApiAuth(tokens, localhost_is_admin=True),
                     allowed_hosts=AllowedHosts.for_api("127.0.0.1"))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield Served(runner.addresses[0][1], store, tokens, metrics)
    finally:
        await runner.cleanup()
        await store.close()


WRITES = [("PUT", "/meshes/default", MESH), ("POST", "/tokens/admin", TOKEN_REQUEST),
          ("POST", "/tokens/dataplane", json.dumps({"mesh": "default", "name": "web-1"}).encode()),
          ("POST", "/tokens/revocations", REVOCATION), ("DELETE", "/meshes/default", b"")]
WRITE_IDS = ["put", "admin-token", "dataplane-token", "revoke", "delete"]

# name -> (headers, except Host, which is filled in unless given; expected status and title)
HOSTILE: dict[str, tuple[dict[str, str], int, str]] = {
    "rebound-host": ({"Host": "evil.example:{port}", **JSON}, 421, "Misdirected Request"),
    "rebound-host-no-port": ({"Host": "evil.example", **JSON}, 421, "Misdirected Request"),
    "localhost-lookalike": ({"Host": "localhost.evil.example:{port}", **JSON}, 421, "Misdirected Request"),
    "unparsable-host": ({"Host": "127.0.0.1:abc", **JSON}, 421, "Misdirected Request"),
    "host-with-userinfo": ({"Host": "evil@127.0.0.1", **JSON}, 421, "Misdirected Request"),
    "foreign-origin": ({"Origin": "http://evil.example", **JSON}, 403, "Access Denied"),
    "null-origin": ({"Origin": "null", **JSON}, 403, "Access Denied"),
    "other-local-app": ({"Origin": "http://127.0.0.1:1", **JSON}, 403, "Access Denied"),
    "origin-other-scheme-port": ({"Origin": "https://127.0.0.1", **JSON}, 403, "Access Denied"),
    "cross-site-fetch": ({"Sec-Fetch-Site": "cross-site", **JSON}, 403, "Access Denied"),
    "same-site-fetch": ({"Sec-Fetch-Site": "same-site", **JSON}, 403, "Access Denied"),
}


def _headers(template: dict[str, str], served: Served) -> dict[str, str]:
    headers = {k: v.format(port=served.port) for k, v in template.items()}
    return {"Host": served.host, **headers} if "Host" not in headers else headers


def assert_refused(reply: RawReply, status: int, title: str) -> None:
    assert reply.status == status, reply
    assert isinstance(reply.body, dict) and reply.body["title"] == title and reply.body["details"], reply.body


@pytest.mark.parametrize("case", list(HOSTILE), ids=list(HOSTILE))
@pytest.mark.parametrize(("method", "path", "body"), WRITES, ids=WRITE_IDS)
async def test_hostile_writes_are_refused_and_change_nothing(
    served: Served, case: str, method: str, path: str, body: bytes
) -> None:
    await served.store.create(decode_resource({"type": "Mesh", "name": "default"}))  # something to DELETE
    before = await served.state()
    template, status, title = HOSTILE[case]
    reply = await raw_request(served.port, method, path, _headers(template, served), body)
    assert_refused(reply, status, title)
    assert await served.state() == before
    assert served.refusals("host_not_allowed" if status == 421 else "cross_origin") == 1


@pytest.mark.parametrize("content_type", [None, "text/plain", "text/plain;charset=UTF-8",
                                          "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
                                          "application/jsonp", "application/json-patch+json"],
                         ids=["none", "text", "text-charset", "form", "multipart", "jsonp", "json-patch"])
@pytest.mark.parametrize(("method", "path", "body"), WRITES[:4], ids=WRITE_IDS[:4])
async def test_bodies_that_are_not_declared_json_are_415(
    served: Served, content_type: str | None, method: str, path: str, body: bytes
) -> None:
    """The CSRF form: a `text/plain` POST /tokens/admin used to answer an admin token."""
    before = await served.state()
    headers = {"Host": served.host, **({"Content-Type": content_type} if content_type else {})}
    reply = await raw_request(served.port, method, path, headers, body)
    assert_refused(reply, 415, "Unsupported Media Type")
    assert "application/json" in reply.body["details"]
    assert await served.state() == before
    assert served.refusals("not_json") == 1


@pytest.mark.parametrize("path", ["/meshes", "/", "/metrics", "/meshes/default/dataplanes/web-1/xds"])
async def test_reads_through_a_rebound_host_are_refused(served: Served, path: str) -> None:
    reply = await raw_request(served.port, "GET", path, {"Host": f"attacker.example:{served.port}"})
    assert_refused(reply, 421, "Misdirected Request")
    assert "--api-allowed-hosts" in reply.body["details"]


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "LOCALHOST", "localhost.:{port}",
                                  "[::1]:{port}", "127.0.0.2"],
                         ids=["ip", "localhost", "upper-case", "trailing-dot", "ipv6-loopback", "loopback-net"])
async def test_local_names_pass_whatever_the_port(served: Served, host: str) -> None:
    reply = await raw_request(served.port, "GET", "/meshes", {"Host": host.format(port=served.port)})
    assert reply.status == 200, reply


async def test_the_cli_request_shape_writes(served: Served) -> None:
    """What `controlplane apply` (urllib) sends: Host from the URL, JSON content type, no Origin."""
    headers = {"Host": served.host, "Content-Type": "application/json", "Accept": "application/json"}
    assert (await raw_request(served.port, "PUT", "/meshes/default", headers, MESH)).status == 201
    reply = await raw_request(served.port, "POST", "/tokens/admin", headers, TOKEN_REQUEST)
    assert reply.status == 200 and (await served.tokens.verify(reply.body)).subject == "admin"


async def test_a_same_origin_page_works(served: Served) -> None:
    """A page served by the API itself (the coming /gui): the browser sends Origin and Sec-Fetch-Site."""
    page = {"Host": f"localhost:{served.port}", "Origin": f"http://localhost:{served.port}",
            "Sec-Fetch-Site": "same-origin", "Content-Type": "application/json; charset=utf-8"}
    assert (await raw_request(served.port, "PUT", "/meshes/default", page, MESH)).status == 201
    assert (await raw_request(served.port, "GET", "/meshes/default", page)).status == 200
    assert (await raw_request(served.port, "DELETE", "/meshes/default", page)).status == 200


async def test_cross_site_reads_are_answered_the_browser_keeps_them_from_the_page(served: Served) -> None:
    """Only the Host check applies to reads: without CORS headers the attacker's page cannot read the answer,
    and nothing reads with side effects."""
    reply = await raw_request(served.port, "GET", "/meshes",
                              {"Host": served.host, "Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"})
    assert reply.status == 200 and "Access-Control-Allow-Origin" not in reply.headers


async def test_http_1_0_without_host_is_not_a_browser_and_passes(served: Served) -> None:
    reply = await raw_request(served.port, "PUT", "/meshes/default", JSON, MESH, version="HTTP/1.0")
    assert reply.status == 201, reply


@pytest.mark.parametrize(("address", "extra", "host", "allowed"), [
    ("127.0.0.1", (), "127.0.0.1", True),
    ("127.0.0.1", (), "localhost", True),
    ("127.0.0.1", (), "10.1.2.3", False),  # not where this API listens
    ("127.0.0.1", (), "cp.example.com", False),
    ("127.0.0.1", ("cp.example.com",), "cp.example.com", True),
    ("127.0.0.1", ("CP.Example.com.",), "cp.example.com", True),
    ("127.0.0.1", ("cp.example.com",), "x.cp.example.com", False),
    ("10.0.0.5", (), "10.0.0.5", True),
    ("10.0.0.5", (), "10.0.0.6", False),
    ("::", (), "2001:db8::1", True),  # every address: any IP literal, which cannot be rebound
    ("0.0.0.0", (), "10.9.8.7", True),
    ("0.0.0.0", (), "evil.example", False),
    ("0.0.0.0", ("control-plane",), "control-plane", True),
    ("cp.internal", (), "cp.internal", True),
    ("::1", (), "0:0:0:0:0:0:0:1", True),
    ("fd00::5", (), "fd00:0::5", True),
    ("127.0.0.1", ("*",), "anything.example", True),
], ids=lambda value: str(value))
def test_allowed_hosts(address: str, extra: tuple[str, ...], host: str, allowed: bool) -> None:
    assert AllowedHosts.for_api(address, extra).allows(host) is allowed


def test_wildcard_bind_allows_this_machines_name() -> None:
    import socket

    assert AllowedHosts.for_api("0.0.0.0").allows(socket.gethostname().lower())


@pytest.mark.parametrize("entry", ["http://cp.example.com", "cp.example.com:5681", "", "a/b", "user@host", "a b"])
def test_bad_allowed_host_entries_name_the_flag(entry: str) -> None:
    with pytest.raises(ValueError, match=f"--api-allowed-hosts: {entry!r} is not a host name or IP address"):
        AllowedHosts.for_api("127.0.0.1", [entry])
