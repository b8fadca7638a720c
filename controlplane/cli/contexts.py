"""The per-user CLI configuration: known control planes and which one is active (kumactl's
`~/.kumactl/config`, managed by `controlplane config control-planes ...`).

Where: `--config-file`, else `$CONTROLPLANE_CONFIG`, else `$XDG_CONFIG_HOME/controlplane/config.yaml`
(`~/.config/controlplane/config.yaml`). The format is kumactl's (`contexts`, `controlPlanes` with
`coordinates.apiServer.url`/`caCertFile`, `authType: tokens` with `authConf.token`, `currentContext`), plus
`tokenFile` beside `caCertFile` for a token kept in a file of its own. Fields kumactl has and we cannot honour
(client certificates, extra headers, skipping TLS verification, per-context defaults) are refused when read,
naming the field, rather than silently ignored.

A missing file is kumactl's default configuration: one control plane `local` at http://127.0.0.1:5681, active.
It is written only by the `config` commands, atomically (a temporary file in the same directory, mode 0600
from its creation, fsynced, then renamed over the old one), so a crash leaves the old file or the new one and
the token it may hold is never readable by others. An explicit `--config-file` must exist, except for
`config control-planes add`, which creates it (in an existing directory: a typo must not leave files
somewhere). Must not: talk to the API.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Final

import click
import yaml

CONFIG_ENV: Final = "CONTROLPLANE_CONFIG"
DEFAULT_NAME: Final = "local"
DEFAULT_URL: Final = "http://127.0.0.1:5681"
TOKENS_AUTH: Final = "tokens"
_UNSUPPORTED: Final = ("clientCertFile", "clientKeyFile", "headers", "skipVerify")


class ConfigInvalid(Exception):
    """A field of the configuration file is wrong; the message names it."""


@dataclass(frozen=True, slots=True)
class ControlPlane:
    """One known control plane: its API URL, the CA that signs its certificate, and how to authenticate."""

    name: str
    url: str
    ca_cert_file: str = ""
    token_file: str = ""
    token: str = ""


@dataclass(frozen=True, slots=True)
class CliConfig:
    """The whole file: control planes in the order they were added; `current` names the active one."""

    control_planes: tuple[ControlPlane, ...] = ()
    current: str = ""

    def find(self, name: str) -> ControlPlane | None:
        return next((cp for cp in self.control_planes if cp.name == name), None)

    def active(self) -> ControlPlane | None:
        return self.find(self.current) if self.current else None

    def with_control_plane(self, cp: ControlPlane) -> CliConfig:
        """`cp` added (or replacing the one of that name, in place) and made active."""
        kept = [cp if old.name == cp.name else old for old in self.control_planes]
        if self.find(cp.name) is None:
            kept.append(cp)
        return CliConfig(tuple(kept), cp.name)

    def without(self, name: str) -> CliConfig:
        """`name` removed; if it was active, the first remaining one becomes active (kumactl's rule)."""
        kept = tuple(cp for cp in self.control_planes if cp.name != name)
        current = self.current if self.current != name else (kept[0].name if kept else "")
        return CliConfig(kept, current)


DEFAULT_CONFIG: Final = CliConfig((ControlPlane(DEFAULT_NAME, DEFAULT_URL),), DEFAULT_NAME)


@dataclass(frozen=True, slots=True)
class ConfigLocation:
    path: Path
    explicit: bool = field(default=False)
    """Given with `--config-file`: then it must exist to be read."""


def locate(given: str | None) -> ConfigLocation:
    if given:
        return ConfigLocation(Path(given), explicit=True)
    if os.environ.get(CONFIG_ENV):
        return ConfigLocation(Path(os.environ[CONFIG_ENV]))
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return ConfigLocation(Path(base) / "controlplane" / "config.yaml")


def load(where: ConfigLocation, *, creating: bool = False) -> CliConfig:
    """The configuration at `where`; the default one when the file does not exist (an explicit
    `--config-file` must exist unless `creating`). One-line ClickException naming the file otherwise."""
    try:
        text = where.path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if where.explicit and not creating:
            raise click.ClickException(f"--config-file {where.path}: No such file or directory") from None
        return DEFAULT_CONFIG
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise click.ClickException(f"cannot read the CLI configuration {where.path}: {reason}") from None
    try:
        return parse(yaml.safe_load(text))
    except (yaml.YAMLError, ConfigInvalid) as exc:
        reason = " ".join(str(exc).split())
        raise click.ClickException(f"the CLI configuration {where.path} is not valid: {reason}") from None


def _mapping(value: object, where: str) -> dict[str, object]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigInvalid(f"{where}: must be a mapping")
    return value


def _text(value: object, where: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ConfigInvalid(f"{where}: must be a string")
    return value


def _only(body: dict[str, object], allowed: tuple[str, ...], where: str) -> None:
    for name in body:
        if name in _UNSUPPORTED:
            raise ConfigInvalid(f"{where}.{name}: is not supported by this CLI")
        if name not in allowed:
            raise ConfigInvalid(f"{where}.{name}: unknown field; valid fields: {', '.join(allowed)}")


def parse(document: object) -> CliConfig:
    """kumactl's layout (see the module docstring); ConfigInvalid naming the field that is wrong."""
    body = _mapping(document, "the file")
    _only(body, ("controlPlanes", "contexts", "currentContext"), "")
    planes = [_control_plane(item, f"controlPlanes[{i}]") for i, item in enumerate(_list(body, "controlPlanes"))]
    contexts = {}
    for i, item in enumerate(_list(body, "contexts")):
        entry = _mapping(item, f"contexts[{i}]")
        _only(entry, ("name", "controlPlane"), f"contexts[{i}]")
        contexts[_text(entry.get("name"), f"contexts[{i}].name")] = _text(entry.get("controlPlane"),
                                                                          f"contexts[{i}].controlPlane")
    current = _text(body.get("currentContext"), "currentContext")
    return CliConfig(tuple(planes), contexts.get(current, current) if current else "")


def _list(body: dict[str, object], name: str) -> list[object]:
    value = body.get(name) or []
    if not isinstance(value, list):
        raise ConfigInvalid(f"{name}: must be a list")
    return value


def _control_plane(item: object, where: str) -> ControlPlane:
    entry = _mapping(item, where)
    _only(entry, ("name", "coordinates"), where)
    coordinates = _mapping(entry.get("coordinates"), f"{where}.coordinates")
    _only(coordinates, ("apiServer",), f"{where}.coordinates")
    at = f"{where}.coordinates.apiServer"
    server = _mapping(coordinates.get("apiServer"), at)
    _only(server, ("url", "caCertFile", "tokenFile", "authType", "authConf"), at)
    auth_type = _text(server.get("authType"), f"{at}.authType")
    if auth_type not in ("", TOKENS_AUTH):
        raise ConfigInvalid(f'{at}.authType: only "{TOKENS_AUTH}" is supported, got {auth_type!r}')
    auth_conf = _mapping(server.get("authConf"), f"{at}.authConf")
    name, url = _text(entry.get("name"), f"{where}.name"), _text(server.get("url"), f"{at}.url")
    if not name or not url:
        raise ConfigInvalid(f"{where}: needs a name and coordinates.apiServer.url")
    return ControlPlane(name, url, _text(server.get("caCertFile"), f"{at}.caCertFile"),
                        _text(server.get("tokenFile"), f"{at}.tokenFile"),
                        _text(auth_conf.get("token"), f"{at}.authConf.token"))


def render(config: CliConfig) -> str:
    """kumactl's layout, one context per control plane (named after it)."""
    planes = []
    for cp in config.control_planes:
        server: dict[str, object] = {"url": cp.url}
        if cp.ca_cert_file:
            server["caCertFile"] = cp.ca_cert_file
        if cp.token_file:
            server["tokenFile"] = cp.token_file
        if cp.token:
            server |= {"authType": TOKENS_AUTH, "authConf": {"token": cp.token}}
        planes.append({"coordinates": {"apiServer": server}, "name": cp.name})
    document = {"contexts": [{"controlPlane": cp.name, "name": cp.name} for cp in config.control_planes],
                "controlPlanes": planes, "currentContext": config.current}
    text: str = yaml.safe_dump(document, sort_keys=False, default_flow_style=False)
    return text


def save(where: ConfigLocation, config: CliConfig) -> None:
    """Write atomically with mode 0600 (see the module docstring); the default directory is created (0700),
    an explicit file's directory must exist."""
    directory = where.path.parent
    if not directory.is_dir():
        if where.explicit or os.environ.get(CONFIG_ENV):
            raise click.ClickException(f"cannot write the CLI configuration {where.path}: "
                                       f"directory {directory} does not exist")
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=directory, prefix=f".{where.path.name}.", suffix=".tmp")  # 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(render(config))
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, where.path)
    except OSError as exc:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise click.ClickException(f"cannot write the CLI configuration {where.path}: "
                                   f"{exc.strerror or exc}") from None


def without_secrets(cp: ControlPlane) -> ControlPlane:
    return replace(cp, token="*****" if cp.token else "")
