"""Who may write through the HTTP API, and the token routes.

Writes (PUT, POST, DELETE) need an admin: a request from a loopback address when `localhost_is_admin` (the
default, like Kuma's `KUMA_API_SERVER_AUTHN_LOCALHOST_IS_ADMIN`, so the quick start needs no set-up), or one
with `Authorization: Bearer <admin token>`. A missing, malformed, expired, foreign or revoked token is 401;
a valid token that is not an admin token (a dataplane token) is 403. Reads stay open. The check runs
before the handler, so a refused request writes nothing.

Token routes (Kuma's `POST /tokens/dataplane` returns the bare token as text/plain):
`POST /tokens/dataplane {mesh, name, validFor}`, `POST /tokens/admin {validFor}`,
`POST /tokens/revocations {id}`.
"""

from __future__ import annotations

import ipaddress
import json
from datetime import timedelta
from typing import Final

import structlog
from aiohttp import web

from controlplane.api.errors import ApiError, Handler
from controlplane.api.keys import AUTH, METRICS, ApiAuth
from controlplane.auth.revocation import TOKEN_ID
from controlplane.auth.tokens import ADMIN, TokenError, bearer_token, parse_duration
from controlplane.errors import Violation
from controlplane.resources.codec import validate_mesh_name, validate_resource_name

log = structlog.get_logger(__name__)

READ_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
DEFAULT_DATAPLANE_VALIDITY: Final = "8760h"
DEFAULT_ADMIN_VALIDITY: Final = "24h"
_TOKEN: Final = "Could not issue a token"


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.method not in READ_METHODS:
        await _require_admin(request, request.app[AUTH])
    return await handler(request)


async def _require_admin(request: web.Request, auth: ApiAuth) -> None:
    if auth.localhost_is_admin and _is_loopback(request.remote):
        return
    failures = request.app[METRICS].api_auth_failures
    token = bearer_token(request.headers.get("Authorization"))
    if token is None:
        failures.labels("missing").inc()
        raise ApiError(401, "Unauthenticated", "this operation needs an admin token: "
                                               "send `Authorization: Bearer <token>` (controlplane generate admin-token)")
    try:
        claims = await auth.tokens.verify(token)
    except TokenError as exc:
        failures.labels(exc.reason).inc()
        log.warning("api_request_unauthenticated", reason=exc.reason, method=request.method, path=request.path)
        raise ApiError(401, "Unauthenticated", str(exc)) from None
    if claims.subject != ADMIN:
        failures.labels("not_admin").inc()
        raise ApiError(403, "Access Denied", f"a {claims.subject} token cannot change resources; use an admin token")


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
    await request.app[AUTH].tokens.revocations.revoke(token_id)
    log.info("token_revoked", token_id=token_id)
    return web.json_response({"revoked": token_id})


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
