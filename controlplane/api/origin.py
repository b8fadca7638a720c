"""Browser attacks on the API: DNS rebinding (foreign `Host`) and cross-site requests (CSRF).

The API trusts requests from loopback (localhost is admin, like Kuma), and a browser on the control plane's
host sends requests from loopback on behalf of any web page it shows. Three checks, in one place, before
authentication and before any handler, so a refused request reads and writes nothing:

1. `Host` (every request, reads too): a page that rebinds its own DNS name to 127.0.0.1 talks to the API
   with `Host: evil.example`, and the browser then lets it read the answers. Allowed: localhost, loopback
   addresses, the address the API is bound to and `--api-allowed-hosts`; when bound to every address
   (`0.0.0.0`, `::`) also any IP literal (a name can be rebound, an IP literal cannot) and this machine's
   host name. Ports are ignored: rebinding keeps the port. A request without `Host` (HTTP/1.0 tools) is
   not a browser's and passes. Refused with 421 Misdirected Request.
2. Cross-origin writes (PUT, POST, DELETE, PATCH): a browser marks them with `Sec-Fetch-Site` other than
   `same-origin`/`none` (`same-site` included: another port of localhost is another application) or with
   an `Origin` whose host and port differ from `Host`. CLI and scripts send neither. Refused with 403.
3. `Content-Type: application/json` on PUT, POST and PATCH: HTML forms and `fetch` "simple requests" can
   only send `text/plain`, form encodings and no custom headers without a CORS preflight, which this API
   never grants; requiring JSON closes that door even for a browser that sends no `Origin`. Refused with
   415, before the body is read.

Each refusal is logged (`api_request_refused`, warning) and counted in `api_auth_failures_total{reason}`
(`host_not_allowed`, `cross_origin`, `not_json`). Must not: authenticate (auth.py) or answer CORS preflights
(the API serves no cross-origin clients).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, NoReturn
from urllib.parse import urlsplit

import structlog
from aiohttp import web

from controlplane.api.errors import ApiError, Handler
from controlplane.api.keys import METRICS

log = structlog.get_logger(__name__)

LOCALHOST_NAMES: Final = frozenset({"localhost"})
WILDCARD_ADDRESSES: Final = frozenset({"", "0.0.0.0", "::"})
BODY_METHODS: Final = frozenset({"PUT", "POST", "PATCH"})
WRITE_METHODS: Final = BODY_METHODS | {"DELETE"}
SAME_ORIGIN_FETCH: Final = frozenset({"same-origin", "none"})
JSON: Final = "application/json"
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}


@dataclass(frozen=True, slots=True)
class AllowedHosts:
    """Which `Host` names the API answers (see the module docstring)."""

    names: frozenset[str]
    any_ip: bool = False
    any_host: bool = False

    @classmethod
    def for_api(cls, address: str, extra: Iterable[str] = ()) -> AllowedHosts:
        """Defaults derived from the API's bind address, plus `--api-allowed-hosts` (ValueError if one is not
        a host name or IP address; `*` allows every host)."""
        given = [normalize_allowed_host(entry) for entry in extra]
        names = set(LOCALHOST_NAMES) | {name for name in given if name != "*"}
        wildcard = address.strip() in WILDCARD_ADDRESSES
        if wildcard:
            names.add(socket.gethostname().lower())
        else:
            names.add(normalize_allowed_host(address))
        return cls(frozenset(names), any_ip=wildcard, any_host="*" in given)

    def allows(self, hostname: str) -> bool:
        """`hostname` as `parse_host` returns it (lower case, no port, no brackets, no trailing dot)."""
        if self.any_host or hostname in self.names:
            return True
        try:
            ip = ipaddress.ip_address(hostname)
        except ValueError:
            return False
        return ip.is_loopback or self.any_ip or any(_same_ip(ip, name) for name in self.names)

    def describe(self) -> str:
        extra = ", any IP address" if self.any_ip else ""
        return ", ".join(sorted(self.names)) + ", loopback addresses" + extra


ALLOWED_HOSTS: Final = web.AppKey("allowed_hosts", AllowedHosts)
LOOPBACK_ONLY: Final = AllowedHosts(LOCALHOST_NAMES | {"127.0.0.1"})
"""What `AllowedHosts.for_api("127.0.0.1")` gives: the API tests' bare app and the default bind address."""


def normalize_allowed_host(entry: str) -> str:
    value = entry.strip().lower().rstrip(".")
    if value == "*":
        return value
    if value.startswith("[") and value.endswith("]"):
        value = value[1:-1]
    if not value or any(c in value for c in "/@?# ") or (":" in value and not _is_ip(value)):
        raise ValueError(f"--api-allowed-hosts: {entry!r} is not a host name or IP address (give no scheme, port "
                         "or path; ports are not compared)")
    return value


def parse_host(header: str) -> tuple[str, int | None] | None:
    """(hostname, port) of a `Host` header or an `Origin`'s netloc; None if it does not parse."""
    try:
        parts = urlsplit("//" + header.strip())
        hostname, port = parts.hostname, parts.port
    except ValueError:
        return None
    if not hostname or parts.username is not None or parts.path:
        return None
    return hostname.rstrip("."), port


@web.middleware
async def browser_guard_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    host_header = request.headers.get("Host")
    host = parse_host(host_header) if host_header is not None else None
    if host_header is not None:
        allowed = request.app[ALLOWED_HOSTS]
        if host is None or not allowed.allows(host[0]):
            _refuse(request, "host_not_allowed", ApiError(
                421, "Misdirected Request", f"Host {host_header!r} is not an address of this API (allowed: "
                f"{allowed.describe()}); add it to --api-allowed-hosts to reach the API under that name"))
    if request.method in WRITE_METHODS:
        _check_same_origin(request, host)
    if request.method in BODY_METHODS and request.content_type != JSON:
        given = request.headers.get("Content-Type")
        _refuse(request, "not_json", ApiError(
            415, "Unsupported Media Type", f"the request body must be JSON with Content-Type: {JSON} "
            f"(got {given!r})" if given else f"the request needs Content-Type: {JSON}"))
    return await handler(request)


def _check_same_origin(request: web.Request, host: tuple[str, int | None] | None) -> None:
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None and site.strip().lower() not in SAME_ORIGIN_FETCH:
        _refuse(request, "cross_origin",
                ApiError(403, "Access Denied", f"cross-origin request refused (Sec-Fetch-Site: {site})"))
    origin = request.headers.get("Origin")
    if origin is not None and not _same_origin(origin, host):
        _refuse(request, "cross_origin", ApiError(
            403, "Access Denied", f"cross-origin request refused (Origin {origin!r} is not this API's origin)"))


def _refuse(request: web.Request, reason: str, error: ApiError) -> NoReturn:
    """Log (warning: rejected input) and count, then raise for error_middleware to answer."""
    request.app[METRICS].api_auth_failures.labels(reason).inc()
    log.warning("api_request_refused", reason=reason, method=request.method, path=request.path,
                host=request.headers.get("Host"), origin=request.headers.get("Origin"), status=error.status)
    raise error


def _same_origin(origin: str, host: tuple[str, int | None] | None) -> bool:
    """The Origin's host and port equal the Host header's. Schemes are not compared (a TLS-terminating proxy
    makes them differ); a port left out means the Origin scheme's default, on both sides."""
    scheme, _, netloc = origin.strip().partition("://")
    parsed = parse_host(netloc) if scheme.lower() in _DEFAULT_PORTS else None
    if parsed is None or host is None:
        return False  # `Origin: null` (sandboxed frames, file:), or a request without Host
    default = _DEFAULT_PORTS[scheme.lower()]
    return parsed[0] == host[0] and (parsed[1] or default) == (host[1] or default)


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _same_ip(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, name: str) -> bool:
    try:
        return ipaddress.ip_address(name) == ip
    except ValueError:
        return False
