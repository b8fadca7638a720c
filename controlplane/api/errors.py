"""The one place where errors become HTTP responses, with Kuma's body shape.

Kuma 1.x body (`pkg/core/rest/errors/types/error.go`): `{"title", "details", "causes": [{"field", "message"}]}`
(`causes` omitted when empty). Handlers raise; this middleware answers. Nothing is written on any error
because validation and the mesh check happen before the single store write.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

import structlog
from aiohttp import web

from controlplane.api.keys import MAX_BODY
from controlplane.errors import (
    AlreadyExists,
    Conflict,
    ControlPlaneError,
    NotFound,
    StoreUnavailable,
    ValidationError,
    Violation,
)

log = structlog.get_logger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiError(ControlPlaneError):
    """An error with an explicit HTTP status and Kuma title/details (bad paging, URL/body mismatch, ...)."""

    def __init__(self, status: int, title: str, details: str, causes: Sequence[Violation] = ()) -> None:
        self.status, self.title, self.details, self.causes = status, title, details, tuple(causes)
        super().__init__(f"{title} ({details})")


def error_body(title: str, details: str, causes: Sequence[Violation] = ()) -> dict[str, object]:
    body: dict[str, object] = {"title": title, "details": details}
    if causes:
        body["causes"] = [{"field": c.field, "message": c.message} for c in causes]
    return body


def _title(request: web.Request) -> str:
    if request.method == "DELETE":
        return "Could not delete a resource"
    if request.method in ("PUT", "POST"):
        return "Could not process a resource"
    return "Could not retrieve a resource"


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return web.json_response(error_body(exc.title, exc.details, exc.causes), status=exc.status)
    except ValidationError as exc:
        log.info("request_rejected", violations=[str(v) for v in exc.violations])
        return web.json_response(error_body(_title(request), exc.details, exc.violations), status=400)
    except NotFound:
        return web.json_response(error_body(_title(request), "Not found"), status=404)
    except (AlreadyExists, Conflict) as exc:
        details = "Resource was changed concurrently; retry" if isinstance(exc, Conflict) else "Already exists"
        return web.json_response(error_body(_title(request), details), status=409)
    except StoreUnavailable as exc:
        return web.json_response(error_body("Store unavailable", str(exc)), status=503)
    except web.HTTPRequestEntityTooLarge:
        details = f"request body is larger than the limit of {request.app[MAX_BODY]} bytes"
        return web.json_response(error_body("Request body too large", details), status=413)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return web.json_response(error_body(exc.reason, exc.text or exc.reason), status=exc.status)
    except Exception:
        log.exception("request_failed", method=request.method, path=request.path)
        return web.json_response(error_body("Internal Server Error", "Internal Server Error"), status=500)
