"""Small synchronous client for the control plane's HTTP API, used by the CLI commands.

Synchronous stdlib `urllib` on purpose: CLI commands are one-shot and need no event loop or extra
dependency. Every failure becomes a `click.ClickException` with a one-line, human message: an unreachable
control plane names the URL; an API error prints Kuma's title/details and one `field: message` line per cause.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Final

import click

DEFAULT_API_URL: Final = "http://127.0.0.1:5681"
API_URL_ENV: Final = "CONTROLPLANE_API_URL"
TIMEOUT_S: Final = 30.0

api_url_option = click.option(
    "--api-url", envvar=API_URL_ENV, default=DEFAULT_API_URL, show_default=True,
    help=f"Control plane HTTP API (env {API_URL_ENV}).",
)


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: object


class ApiFailure(click.ClickException):
    """An API error response; `status` lets callers special-case 404."""

    def __init__(self, status: int, body: object) -> None:
        self.status = status
        self.body = body
        super().__init__(format_error(body, status))


def format_error(body: object, status: int) -> str:
    if not isinstance(body, dict):
        return f"HTTP {status}: {body}"
    lines = [f"{body.get('title', 'Error')} ({body.get('details', status)})"]
    for cause in body.get("causes") or []:
        if isinstance(cause, dict):
            fld = cause.get("field")
            lines.append(f"{fld}: {cause.get('message')}" if fld else str(cause.get("message")))
    return "\n".join(lines)


class ApiClient:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")

    def request(self, method: str, path: str, body: object | None = None) -> Response:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base_url + path, data=data, method=method)
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        token = os.environ.get("CONTROLPLANE_API_TOKEN")
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=TIMEOUT_S) as resp:
                return Response(resp.status, _decode(resp.read()))
        except urllib.error.HTTPError as exc:
            raise ApiFailure(exc.code, _decode(exc.read())) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise click.ClickException(
                f"cannot reach the control plane at {self.base_url}: {reason} "
                f"(is `controlplane run` running? set --api-url or {API_URL_ENV})"
            ) from None


def _decode(raw: bytes) -> object:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return raw.decode(errors="replace")
