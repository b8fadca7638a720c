"""Who may write through the HTTP API, who may read a dataplane's config, and the token routes.

Writes (PUT, POST, DELETE) need an admin: a request from a loopback address when `localhost_is_admin` (the
default, like Kuma's `KUMA_API_SERVER_AUTHN_LOCALHOST_IS_ADMIN`, so the quick start needs no set-up), or one
with `Authorization: Bearer <admin token>`. A missing, malformed, expired, foreign or revoked token is 401;
a valid token that is not an admin token (a dataplane token) is 403. The check runs before the handler, so
a refused request writes nothing. (Browser attacks on the loopback rule are stopped earlier, origin.py.)

Reads are open, except, with `dataplane_reads` (`--api-read-auth`), every per-dataplane inspection route,
i.e. any route under `/meshes/{mesh}/dataplanes/{name}/` (`/xds`, `/policies` and whatever is added there):
it shows that proxy's whole configuration, which ADS gives only to the holder of its token, so it needs an
admin or that dataplane's own token (another dataplane's token is 403). The rule follows the route
pattern, not a list, so a new inspection route cannot be forgotten.

Token routes (Kuma's `POST /tokens/dataplane` returns the bare token as text/plain):
`POST /tokens/dataplane {mesh, name, validFor}`, `POST /tokens/admin {validFor}`,
`POST /tokens/revocations {id}` (answers `{"revoked": id, "alreadyRevoked": bool}`; 503 if the store could
not record it, never a success for a revocation that was not written).
"""

from __future__ import annotations

import ipaddress
import json
from datetime import timedelta
from typing import Final, NoReturn

import structlog
from aiohttp import web

from controlplane.api.errors import ApiError, Handler
from controlplane.api.keys import AUTH, METRICS, ApiAuth
from controlplane.auth.revocation import TOKEN_ID
from controlplane.auth.tokens import ADMIN, TokenClaims, TokenError, bearer_token, parse_duration
from controlplane.errors import Violation
from controlplane.resources.codec import validate_mesh_name, validate_resource_name

log = structlog.get_logger(__name__)

READ_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
DEFAULT_DATAPLANE_VALIDITY: Final = "8760h"
DEFAULT_ADMIN_VALIDITY: Final = "24h"
_TOKEN: Final = "Could not issue a token"
DATAPLANE_ROUTE_PREFIX: Final = "/meshes/{mesh}/dataplanes/{name}/"


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    auth = request.app[AUTH]
    if request.method not in READ_METHODS:
        claims = await _authenticate(request, auth, "an admin token")
        if claims is not None and claims.subject != ADMIN:
            _deny(request, "not_admin", f"a {claims.subject} token cannot change resources; use an admin token")
    elif auth.dataplane_reads and (dataplane := _inspected_dataplane(request)) is not None:
        claims = await _authenticate(request, auth, "an admin token or the dataplane's own token")
        if claims is not None and claims.subject != ADMIN and (claims.mesh, claims.name) != dataplane:
            mesh, name = dataplane
            _deny(request, "wrong_dataplane", f"the token is for dataplane {claims.name!r} in mesh {claims.mesh!r}; "
                                              f"dataplane {name!r} in mesh {mesh!r} needs an admin token or its own")
    return await handler(request)


async def _authenticate(request: web.Request, auth: ApiAuth, needed: str) -> TokenClaims | None:
    """None for loopback when localhost is admin; else the verified bearer token, or a 401."""
    if auth.localhost_is_admin and _is_loopback(request.remote):
        return None
    failures = request.app[METRICS].api_auth_failures
    token = bearer_token(request.headers.get("Authorization"))
    if token is None:
        failures.labels("missing").inc()
        raise ApiError(401, "Unauthenticated", f"this operation needs {needed}: "
                                               "send `Authorization: Bearer <token>` (controlplane generate admin-token)")
    try:
        return await auth.tokens.verify(token)
    except TokenError as exc:
        failures.labels(exc.reason).inc()
        log.warning("api_request_unauthenticated", reason=exc.reason, method=request.method, path=request.path)
        raise ApiError(401, "Unauthenticated", str(exc)) from None


def _deny(request: web.Request, reason: str, details: str) -> NoReturn:
    request.app[METRICS].api_auth_failures.labels(reason).inc()
    raise ApiError(403, "Access Denied", details)


def _inspected_dataplane(request: web.Request) -> tuple[str, str] | None:
    """(mesh, name) when the route is a per-dataplane inspection route (any route below a dataplane)."""
    resource = request.match_info.route.resource
    if resource is None or not resource.canonical.startswith(DATAPLANE_ROUTE_PREFIX):
        return None
    return request.match_info["mesh"], request.match_info["name"]


def _is_loopback(remote: str | None) -> bool:
    try:
        return remote is not None and ipaddress.ip_address(remote.split("%")[0]).is_loopback
    except ValueError:
        return False  # a unix socket or something unexpected: not localhost


async def issue_dataplane_token(request: web.Request) -> web.Response:
    body = await _json_object(request)
    violations = [*validate_mesh_name(body.get("mesh"), "mesh"), *validate_resource_name(body.get("name"), "name")]
    valid_for = _validity(body, DEFAULT_DATAPLANE_VALIDITY, violations)
    if violations or valid_for is None:
        raise ApiError(400, _TOKEN, "Invalid request", violations)
    mesh, name = str(body["mesh"]), str(body["name"])
    token = request.app[AUTH].tokens.issue_dataplane(mesh, name, valid_for)
    log.info("dataplane_token_issued", mesh=mesh, name=name, valid_for_s=int(valid_for.total_seconds()))
    return web.Response(text=token, content_type="text/plain")


async def issue_admin_token(request: web.Request) -> web.Response:
    body = await _json_object(request)
    violations: list[Violation] = []
    valid_for = _validity(body, DEFAULT_ADMIN_VALIDITY, violations)
    if valid_for is None:
        raise ApiError(400, _TOKEN, "Invalid request", violations)
    token = request.app[AUTH].tokens.issue_admin(valid_for)
    log.info("admin_token_issued", valid_for_s=int(valid_for.total_seconds()))
    return web.Response(text=token, content_type="text/plain")


async def revoke_token(request: web.Request) -> web.Response:
    body = await _json_object(request)
    token_id = body.get("id")
    if not isinstance(token_id, str) or not TOKEN_ID.match(token_id):
        raise ApiError(400, "Could not revoke a token", "Invalid request",
                       [Violation("id", "must be a token id: 32 lowercase hexadecimal digits (the token's jti)")])
    new = await request.app[AUTH].tokens.revocations.revoke(token_id)  # StoreUnavailable → 503, nothing claimed
    log.info("token_revoked" if new else "token_already_revoked", token_id=token_id)
    return web.json_response({"revoked": token_id, "alreadyRevoked": not new})


async def _json_object(request: web.Request) -> dict[str, object]:
    try:
        body = json.loads(await request.read() or b"{}")
    except (ValueError, RecursionError) as exc:
        raise ApiError(400, _TOKEN, f"invalid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ApiError(400, _TOKEN, "the body must be a JSON object")
    return body


def _validity(body: dict[str, object], default: str, violations: list[Violation]) -> timedelta | None:
    raw = body.get("validFor", default)
    try:
        return parse_duration(raw) if isinstance(raw, str) else parse_duration("")
    except ValueError as exc:
        violations.append(Violation("validFor", str(exc)))
        return None


def add_routes(app: web.Application) -> None:
    app.router.add_post("/tokens/dataplane", issue_dataplane_token)
    app.router.add_post("/tokens/admin", issue_admin_token)
    app.router.add_post("/tokens/revocations", revoke_token)
