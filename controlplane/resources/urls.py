"""URL and endpoint parsing as Kuma's validators see them (Go's `net/url.ParseRequestURI`).

Kuma checks a MeshTrace Datadog `url` with Go's `ParseRequestURI` and then looks at its parts; Python's
`urlsplit` accepts and splits differently (it never fails, and it cuts `#fragments`, which Go's request-URI
parser keeps in the path), so the parts Kuma's messages depend on are derived here the way Go derives them.
Also the OpenTelemetry `endpoint` forms this control plane accepts. Pure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

_SCHEME: Final = re.compile(r"^[a-zA-Z][a-zA-Z0-9+\-.]*$")
_PORT: Final = re.compile(r"^[0-9]*$")
OTLP_GRPC_PORT: Final = 4317


@dataclass(frozen=True, slots=True)
class RequestUri:
    """The parts of a parsed request URI, named as Go's `url.URL` fields."""

    scheme: str
    opaque: str
    user: str
    host: str
    """Without brackets for IPv6 literals and without the port."""
    port: str
    """As written, possibly empty (Go's `URL.Port()`)."""
    path: str
    query: str
    fragment: str = ""  # ParseRequestURI never fills it: a '#' stays in the path or query

    @property
    def authority(self) -> str:
        """host:port as written in the URL (Go's `URL.Host`): the zipkin `collector_hostname`."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}" if self.port else host


def parse_request_uri(raw: str) -> RequestUri | None:
    """Go's `url.ParseRequestURI`; None where it returns an error."""
    if not raw or any(ord(c) < 0x20 or ord(c) == 0x7F for c in raw):
        return None
    scheme, rest = "", raw
    head, colon, tail = raw.partition(":")
    if colon and _SCHEME.match(head):
        scheme, rest = head.lower(), tail
    elif colon and head == "":
        return None  # "missing protocol scheme"
    rest, _, query = rest.partition("?")
    if not rest.startswith("/"):
        if scheme:
            return RequestUri(scheme, rest, "", "", "", "", query)
        return None  # "invalid URI for request"
    user = host = port = ""
    if scheme and rest.startswith("//"):
        authority, slash, path = rest[2:].partition("/")
        rest = slash + path
        user, at, hostport = authority.rpartition("@")
        if not at:
            user = ""
        parsed = _host_port(hostport)
        if parsed is None:
            return None
        host, port = parsed
    return RequestUri(scheme, "", user, host, port, rest, query)


def _host_port(hostport: str) -> tuple[str, str] | None:
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            return None
        host, after = hostport[1:end], hostport[end + 1:]
        if after and not after.startswith(":"):
            return None
        port = after[1:]
    else:
        host, _, port = hostport.rpartition(":") if ":" in hostport else (hostport, "", "")
    return (host, port) if _PORT.match(port) else None


@dataclass(frozen=True, slots=True)
class Endpoint:
    """An OpenTelemetry collector: where to connect, and for OTLP over HTTP the URL to post to."""

    host: str
    port: int
    http_uri: str = ""
    """Empty for OTLP over gRPC; the full `http(s)://host:port/path` for OTLP over HTTP."""
    secure: bool = False


def parse_endpoint(raw: str) -> Endpoint | None:
    """`host`, `host:port` or `[v6]:port` (OTLP/gRPC, default port 4317, Kuma's form), or an `http://` /
    `https://` URL (OTLP/HTTP, this control plane's extension; default port 80/443, path as given, `/v1/traces`
    when none). None when it is neither."""
    raw = raw.strip()
    if raw.startswith(("http://", "https://")):
        uri = parse_request_uri(raw)
        if uri is None or not uri.host or (uri.port and not 1 <= int(uri.port) <= 65535):
            return None
        secure = uri.scheme == "https"
        port = int(uri.port) if uri.port else (443 if secure else 80)
        path = uri.path if uri.path not in ("", "/") else "/v1/traces"
        query = f"?{uri.query}" if uri.query else ""
        return Endpoint(uri.host, port, f"{uri.scheme}://{uri.authority}{path}{query}", secure)
    parsed = _host_port(raw)
    if parsed is None or not parsed[0] or "/" in parsed[0] or "@" in parsed[0]:
        return None
    host, written = parsed
    port = int(written) if written else OTLP_GRPC_PORT
    return Endpoint(host, port) if 1 <= port <= 65535 else None
