"""Small synchronous client for the control plane's HTTP API, used by the CLI commands.

Synchronous stdlib `urllib` on purpose: CLI commands are one-shot and need no event loop or extra
dependency. Every failure becomes a `click.ClickException` with a one-line, human message: an unreachable
control plane names the URL; an API error prints Kuma's title/details and one `field: message` line per cause.

Every command that talks to the API takes the same connection options (`api_url_option`): `--api-url`,
`--token` / `--api-token-file` (an admin token for writes when the API is not reached from localhost),
`--ca-cert-file` (to trust an HTTPS API's certificate) and `--config-file` (the CLI configuration,
`contexts.py`). They are accepted on the root command, on groups and on the command itself, before or after
its arguments (`controlplane --api-url U get meshes` and `controlplane get meshes --api-url U` alike); the
value given last on the command line wins. Where each setting comes from, first match wins:
1. the options, 2. the environment (`CONTROLPLANE_API_URL`, `CONTROLPLANE_API_TOKEN`, ...), 3. the active
control plane of the CLI configuration (`controlplane config control-planes switch`), 4. the default URL.
A URL from the options or the environment replaces the active control plane entirely: its token and CA are
not sent to a server the configuration does not name for them.
"""

from __future__ import annotations

import functools
import http
import http.client
import json
import os
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final, TypeVar, cast

import click

from controlplane.cli import contexts

DEFAULT_API_URL: Final = "http://127.0.0.1:5681"
API_URL_ENV: Final = "CONTROLPLANE_API_URL"
TOKEN_ENV: Final = "CONTROLPLANE_API_TOKEN"
TOKEN_FILE_ENV: Final = "CONTROLPLANE_API_TOKEN_FILE"
CA_CERT_ENV: Final = "CONTROLPLANE_CA_CERT_FILE"
TIMEOUT_S: Final = 30.0
_META: Final = "controlplane.api_settings"
_F = TypeVar("_F", bound=Callable[..., object])
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class ApiSettings:
    """Where the API is, how to authenticate to it and which CA to trust for HTTPS."""

    api_url: str = DEFAULT_API_URL
    token: str | None = None
    ca_cert_file: Path | None = None
    control_plane: str = ""
    """The CLI configuration's control plane the URL came from ("" when given by option or environment)."""


def url_error(text: str) -> str:
    """Why `text` cannot be the API's base URL, in the words of the option's error; "" when it can."""
    problem = _api_url_problem(text)
    if not problem:
        return ""
    return (f"{problem}; expected http://HOST:PORT or https://HOST:PORT (the control plane's HTTP API, "
            f"default {DEFAULT_API_URL}), got {text!r}")


def _check_api_url(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """`--api-url`: an http(s) URL with a host (optionally a port and a path prefix), checked before anything
    is sent, so `ftp://...` or `127.0.0.1:5681` is a usage error naming the option rather than a 30 s
    timeout or urllib's "unknown url type"."""
    if value is None:
        return None
    text = value.strip()
    problem = url_error(text)
    if problem:
        raise click.BadParameter(problem, ctx, param)
    return _remember(ctx, param, text.rstrip("/"))


def _api_url_problem(text: str) -> str:
    """Why `text` cannot be the API's base URL, or "" when it can."""
    try:
        parts = urllib.parse.urlsplit(text)
        port = parts.port  # ValueError for a non-numeric or out-of-range port
    except ValueError as exc:
        return str(exc)
    if parts.scheme not in ("http", "https"):
        return f"unsupported scheme {parts.scheme!r}" if parts.scheme else "no scheme"
    if not parts.hostname:
        return "no host"
    if port == 0:
        return "port 0 is not a port to connect to"
    if parts.username is not None or parts.query or parts.fragment:
        return "user info, a query or a fragment has no place in it"
    return ""


def _remember(ctx: click.Context, param: click.Parameter, value: _T) -> _T:
    """Keep an option given on the command line (any level: `meta` is shared by a command and its parents)."""
    if value is not None:
        ctx.meta.setdefault(_META, {})[param.name] = value
    return value


def client_options(command: _F) -> _F:
    """`--api-url`, `--token`, `--api-token-file`, `--ca-cert-file`, `--config-file`, none passed to the
    command: `current_settings()` reads them (see the module docstring)."""
    path = click.Path(exists=True, dir_okay=False, path_type=Path)
    decorators = [
        click.option("--api-url", callback=_check_api_url, expose_value=False,
                     help=f"Control plane HTTP API (env {API_URL_ENV}; default: the active control plane, "
                          f"else {DEFAULT_API_URL})."),
        click.option("--token", expose_value=False, callback=_remember,
                     help=f"Admin token for API writes (env {TOKEN_ENV}); not needed from localhost by default."),
        click.option("--api-token-file", type=path, expose_value=False,
                     callback=_remember, help=f"Read the admin token from this file (env {TOKEN_FILE_ENV})."),
        click.option("--ca-cert-file", type=path, expose_value=False, callback=_remember,
                     help=f"CA certificate (PEM) to trust for an https:// API and a TLS ADS server (env {CA_CERT_ENV})."),
        config_file_option,
    ]
    for decorate in reversed(decorators):
        command = decorate(command)
    return command


config_file_option = click.option(
    "--config-file", type=click.Path(dir_okay=False), expose_value=False, callback=_remember,
    help=f"CLI configuration (env {contexts.CONFIG_ENV}; default ~/.config/controlplane/config.yaml).")


def api_url_option(command: _F) -> _F:
    """The client options, and the resolved API URL passed to the command as `api_url`."""

    @functools.wraps(command)
    def with_api_url(*args: object, **kwargs: object) -> object:
        return command(*args, api_url=current_settings().api_url, **kwargs)

    return client_options(cast(_F, with_api_url))


def given_options(ctx: click.Context | None = None) -> dict[str, object]:
    """The client options given on the command line, at any level."""
    ctx = ctx if ctx is not None else click.get_current_context(silent=True)
    return dict(ctx.meta.get(_META, {})) if ctx is not None else {}


def current_settings() -> ApiSettings:
    """Where the running command's API is and how to reach it (the order in the module docstring)."""
    return settings_for(None)


def settings_for(ctx: click.Context | None) -> ApiSettings:
    """`current_settings` for `ctx` (shell completion has a context that is not the current one)."""
    given = given_options(ctx)
    config_file = given.get("config_file")
    active = None
    if config_file is not None:  # asked for by name: it must be readable even when a URL is given too
        active = contexts.load(contexts.locate(str(config_file))).active()
    url = given.get("api_url") or _env_url()
    if not url:
        if config_file is None:
            active = contexts.load(contexts.locate(None)).active()
        return _from_control_plane(given, active)
    token = _token(given.get("token"), given.get("api_token_file")) or _env_token()
    ca_file = given.get("ca_cert_file") or os.environ.get(CA_CERT_ENV)
    return ApiSettings(str(url), token, Path(str(ca_file)) if ca_file else None)


def _env_token() -> str | None:
    return _token(os.environ.get(TOKEN_ENV), os.environ.get(TOKEN_FILE_ENV))


def _env_url() -> str | None:
    value = os.environ.get(API_URL_ENV)
    if not value:
        return None
    problem = url_error(value.strip())
    if problem:
        raise click.BadParameter(problem, param_hint=f"{API_URL_ENV} (--api-url)")
    return value.strip().rstrip("/")


def _from_control_plane(given: dict[str, object], active: contexts.ControlPlane | None) -> ApiSettings:
    if active is None:
        raise click.ClickException("active Control Plane is not set. Use `controlplane config control-planes add` "
                                   "to add a Control Plane and make it active")
    problem = url_error(active.url)
    if problem:
        raise click.ClickException(f"Control Plane {active.name!r} of the CLI configuration: address {problem}")
    token = (_token(given.get("token"), given.get("api_token_file")) or _env_token()
             or _token(active.token, active.token_file))
    ca_file = given.get("ca_cert_file") or os.environ.get(CA_CERT_ENV) or active.ca_cert_file or None
    return ApiSettings(active.url.rstrip("/"), token, Path(str(ca_file)) if ca_file else None, active.name)


def _token(token: object, token_file: object) -> str | None:
    """The token given, else the one read from `token_file` (whitespace stripped); one source's pair (the
    options, the environment, the active control plane), so a file given as an option beats a token from the
    environment."""
    if token:
        return str(token)
    if not token_file:
        return None
    try:
        return Path(str(token_file)).read_text(encoding="utf-8").strip() or None
    except OSError as exc:
        raise click.ClickException(f"cannot read the API token file {token_file}: {exc.strerror}") from None


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: object


ADMIN_TOKEN_HINT: Final = (
    f"hint: pass an admin token with --token or --api-token-file (env {TOKEN_ENV} / {TOKEN_FILE_ENV}); "
    "`controlplane run --admin-token-file FILE` writes one at start, and `controlplane generate admin-token` "
    "issues one on the control plane's host unless it runs with --no-api-localhost-is-admin"
)


class ApiFailure(click.ClickException):
    """An API error response; `status` lets callers special-case 404."""

    def __init__(self, status: int, body: object, url: str = "") -> None:
        self.status = status
        self.body = body
        message = format_error(body, status, url)
        if status in (401, 403):
            message += "\n" + ADMIN_TOKEN_HINT
        super().__init__(message)


def format_error(body: object, status: int, url: str = "") -> str:
    """Kuma's `{title, details, causes}` as title and one `field: message` line per cause; anything else
    (an empty body, a proxy's HTML page) as the status with its reason phrase and where it came from."""
    if not isinstance(body, dict):
        text = " ".join(str(body).split())[:200] if body is not None else ""
        where = f" from {url}" if url else ""
        return f"HTTP {status}{_phrase(status)}{where}" + (f": {text}" if text else " (empty body)")
    lines = [f"{body.get('title', 'Error')} ({body.get('details', status)})"]
    for cause in body.get("causes") or []:
        if isinstance(cause, dict):
            fld = cause.get("field")
            lines.append(f"{fld}: {cause.get('message')}" if fld else str(cause.get("message")))
    return "\n".join(lines)


class ApiClient:
    def __init__(self, base_url: str | None = None, settings: ApiSettings | None = None,
                 timeout_s: float = TIMEOUT_S) -> None:
        self.settings = settings if settings is not None else current_settings()
        if base_url and self.settings.control_plane and base_url.rstrip("/") != self.settings.api_url:
            # A URL of the caller's own (the demo's control plane): nothing of the active one goes there.
            self.settings = ApiSettings(base_url.rstrip("/"))
        self.base_url = (base_url or self.settings.api_url).rstrip("/")
        self.timeout_s = timeout_s
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
            with urllib.request.urlopen(req, timeout=self.timeout_s, context=self._ssl) as resp:
                return Response(resp.status, _decode(resp.read()))
        except urllib.error.HTTPError as exc:
            answer = _decode(exc.read())
            if not isinstance(answer, dict) and exc.code not in (401, 403):
                # Not one of the API's Kuma-shaped errors: whatever answered is not the control plane (or a
                # proxy in front of it failed), so a 404 must not read as "there is no Mesh ..." to callers.
                hint = f"; is --api-url ({self.base_url}) the control plane's HTTP API?" if exc.code == 404 else ""
                raise click.ClickException(format_error(answer, exc.code, f"{method} {req.full_url}") + hint) from None
            raise ApiFailure(exc.code, answer, f"{method} {req.full_url}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            hint = (f"trust its certificate with --ca-cert-file or {CA_CERT_ENV}" if isinstance(reason, ssl.SSLError)
                    else f"is `controlplane run` running? set --api-url or {API_URL_ENV}")
            if self.settings.control_plane:
                hint += (f"; it is the active control plane {self.settings.control_plane!r} of the CLI "
                         "configuration (`controlplane config control-planes switch`)")
            raise click.ClickException(f"cannot reach the control plane at {self.base_url}: {reason} ({hint})") from None
        except http.client.HTTPException as exc:  # BadStatusLine: something answers, but not HTTP/1.1
            raise click.ClickException(
                f"cannot talk to the control plane at {self.base_url}: the server did not answer HTTP "
                f"({type(exc).__name__}); is it the ADS (gRPC) port? The HTTP API listens on 5681 unless "
                f"`controlplane run --api-port` says otherwise; set --api-url or {API_URL_ENV}"
            ) from None


def _phrase(status: int) -> str:
    """" Not Found" for 404; "" for a status the standard does not name."""
    try:
        return f" {http.HTTPStatus(status).phrase}"
    except ValueError:
        return ""


def _decode(raw: bytes) -> object:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return raw.decode(errors="replace")


def seg(value: str) -> str:
    """One URL path segment: user-typed names must not add path segments (`a/traffic-traces/b`)."""
    return urllib.parse.quote(value, safe="")
