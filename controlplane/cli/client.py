"""Small synchronous client for the control plane's HTTP API, used by the CLI commands.

Synchronous stdlib `urllib` on purpose: CLI commands are one-shot and need no event loop or extra
dependency. Every failure becomes a `click.ClickException` with a one-line, human message: an unreachable
control plane names the URL; an API error prints Kuma's title/details and one `field: message` line per cause.

Every command that talks to the API takes the same connection options (`api_url_option`): `--api-url`,
`--token` / `--api-token-file` (an admin token for writes when the API is not reached from localhost) and
`--ca-cert-file` (to trust an HTTPS API's certificate). Only `--api-url` reaches the command's function; the
others are kept in the click context and read by `ApiClient`, so commands need not pass them around.
"""

from __future__ import annotations

import json
import os
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final, TypeVar

import click

DEFAULT_API_URL: Final = "http://127.0.0.1:5681"
API_URL_ENV: Final = "CONTROLPLANE_API_URL"
TOKEN_ENV: Final = "CONTROLPLANE_API_TOKEN"
TOKEN_FILE_ENV: Final = "CONTROLPLANE_API_TOKEN_FILE"
CA_CERT_ENV: Final = "CONTROLPLANE_CA_CERT_FILE"
TIMEOUT_S: Final = 30.0
_META: Final = "controlplane.api_settings"
_F = TypeVar("_F", bound=Callable[..., object])


@dataclass(frozen=True, slots=True)
class ApiSettings:
    """How to authenticate to the API and which CA to trust for HTTPS."""

    token: str | None = None
    ca_cert_file: Path | None = None


def _remember(ctx: click.Context, param: click.Parameter, value: object) -> object:
    ctx.meta.setdefault(_META, {})[param.name] = value
    return value


def api_url_option(command: _F) -> _F:
    """`--api-url`, `--token`, `--api-token-file`, `--ca-cert-file` (see the module docstring)."""
    path = click.Path(exists=True, dir_okay=False, path_type=Path)
    decorators = [
        click.option("--api-url", envvar=API_URL_ENV, default=DEFAULT_API_URL, show_default=True,
                     help=f"Control plane HTTP API (env {API_URL_ENV})."),
        click.option("--token", envvar=TOKEN_ENV, expose_value=False, callback=_remember,
                     help=f"Admin token for API writes (env {TOKEN_ENV}); not needed from localhost by default."),
        click.option("--api-token-file", envvar=TOKEN_FILE_ENV, type=path, expose_value=False,
                     callback=_remember, help=f"Read the admin token from this file (env {TOKEN_FILE_ENV})."),
        click.option("--ca-cert-file", envvar=CA_CERT_ENV, type=path, expose_value=False, callback=_remember,
                     help=f"CA certificate (PEM) to trust for an https:// API and a TLS ADS server (env {CA_CERT_ENV})."),
    ]
    for decorate in reversed(decorators):
        command = decorate(command)
    return command


def current_settings() -> ApiSettings:
    """The connection options of the running command (else the environment), read once per client."""
    ctx = click.get_current_context(silent=True)
    given: dict[str, object] = ctx.meta.get(_META, {}) if ctx is not None else {}
    token = given.get("token") or os.environ.get(TOKEN_ENV) or None
    token_file = given.get("api_token_file") or os.environ.get(TOKEN_FILE_ENV)
    if token is None and token_file:
        try:
            token = Path(str(token_file)).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise click.ClickException(f"cannot read the API token file {token_file}: {exc.strerror}") from None
    ca_file = given.get("ca_cert_file") or os.environ.get(CA_CERT_ENV)
    return ApiSettings(str(token) if token else None, Path(str(ca_file)) if ca_file else None)


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: object


class ApiFailure(click.ClickException):
    """An API error response; `status` lets callers special-case 404."""

    def __init__(self, status: int, body: object) -> None:
        self.status = status
        self.body = body
        message = format_error(body, status)
        if status in (401, 403):
            message += (f"\nhint: pass an admin token with --token or {TOKEN_ENV} "
                        "(create one on the control plane's host: controlplane generate admin-token)")
        super().__init__(message)


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
    def __init__(self, base_url: str, settings: ApiSettings | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.settings = settings if settings is not None else current_settings()
        self._ssl: ssl.SSLContext | None = None
        if self.base_url.startswith("https:"):
            cafile = str(self.settings.ca_cert_file) if self.settings.ca_cert_file else None
            try:
                self._ssl = ssl.create_default_context(cafile=cafile)
            except (OSError, ssl.SSLError) as exc:
                raise click.ClickException(f"cannot load the CA certificate {cafile}: {exc}") from None

    def request(self, method: str, path: str, body: object | None = None) -> Response:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base_url + path, data=data, method=method)
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if self.settings.token:
            req.add_header("Authorization", f"Bearer {self.settings.token}")
        try:
            with urllib.request.urlopen(req, timeout=TIMEOUT_S, context=self._ssl) as resp:
                return Response(resp.status, _decode(resp.read()))
        except urllib.error.HTTPError as exc:
            raise ApiFailure(exc.code, _decode(exc.read())) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            hint = (f"trust its certificate with --ca-cert-file or {CA_CERT_ENV}" if isinstance(reason, ssl.SSLError)
                    else f"is `controlplane run` running? set --api-url or {API_URL_ENV}")
            raise click.ClickException(f"cannot reach the control plane at {self.base_url}: {reason} ({hint})") from None


def _decode(raw: bytes) -> object:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return raw.decode(errors="replace")


def seg(value: str) -> str:
    """One URL path segment: user-typed names must not add path segments (`a/traffic-traces/b`)."""
    return urllib.parse.quote(value, safe="")
