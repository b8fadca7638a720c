"""The effective configuration of `controlplane run` as `GET /config` shows it, and the cluster id of `GET /`.

Kuma's `/config` is its whole configuration as JSON, grouped by component (`store`, `apiServer`,
`dpServer`, ...) with secrets replaced by `*****` (`config.ConfigForDisplay`). Ours has far fewer settings;
they are grouped under Kuma's section names where one exists, and carry the values in force (a port given as
0 shows the port picked). Secrets never appear: a PostgreSQL password in the URL (user info or a
`password`/`sslpassword` query parameter) is redacted, tokens are never part of the configuration (only the
paths of files holding them are). Pure: the caller passes the ports it bound.
"""

from __future__ import annotations

import os
import urllib.parse
import uuid
from typing import TYPE_CHECKING, Final

from controlplane.cli.security import signing_key_path
from controlplane.store.factory import parse_store_url

if TYPE_CHECKING:
    from controlplane.cli.run import RunConfig

REDACTED: Final = "*****"  # Kuma's config.SanitizedValue
_SECRET_PARAMS: Final = ("password", "sslpassword")
_CLUSTER_NAMESPACE: Final = uuid.UUID("6f1b1a2e-4c1d-4d59-9a55-3f3f2a0c7d11")


def redact_url(url: str) -> str:
    """`postgres://user:*****@host/db?sslpassword=*****`: the URL with every password replaced."""
    parts = urllib.parse.urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        user_info, _, host = netloc.rpartition("@")
        netloc = f"{user_info.split(':', 1)[0]}:{REDACTED}@{host}"
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    cleaned = [(k, REDACTED if k.lower() in _SECRET_PARAMS else v) for k, v in query]
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc, query=urllib.parse.urlencode(cleaned, safe="*")))


def store_section(store_url: str) -> dict[str, object]:
    parsed = parse_store_url(store_url)
    if parsed.backend == "sqlite":
        return {"type": "sqlite", "sqlite": {"path": os.path.abspath(parsed.location)}}
    if parsed.backend == "postgres":
        return {"type": "postgres", "postgres": {"url": redact_url(parsed.location)}}
    return {"type": "memory"}


def cluster_id(store_url: str) -> str:
    """One id for every replica of one store (Kuma keeps its cluster id in the store): derived from the
    store's identity (the SQLite file's real path; PostgreSQL's host, port and database, without user or
    password), random for a memory store, which no other process shares."""
    parsed = parse_store_url(store_url)
    if parsed.backend == "memory":
        return str(uuid.uuid4())
    if parsed.backend == "sqlite":
        identity = "sqlite:" + os.path.realpath(parsed.location)
    else:
        parts = urllib.parse.urlsplit(parsed.location)
        identity = f"postgres://{parts.hostname}:{parts.port or 5432}{parts.path}"
    return str(uuid.uuid5(_CLUSTER_NAMESPACE, identity))


def _path(value: object) -> str:
    return str(value) if value is not None else ""


def config_view(config: RunConfig, api_port: int, xds_port: int) -> dict[str, object]:
    """`GET /config`'s body for `config`, with the ports actually bound."""
    tls = config.tls_cert_file is not None
    return {
        "environment": "universal",
        "mode": "zone",
        "store": store_section(config.store_url),
        "apiServer": {
            "http": {"interface": config.api_host, "port": api_port},
            "https": {"enabled": tls, "tlsCertFile": _path(config.tls_cert_file),
                      "tlsKeyFile": _path(config.tls_key_file)},
            "authn": {"localhostIsAdmin": config.api_localhost_is_admin, "readAuth": config.api_read_auth},
            "allowedHosts": list(config.api_allowed_hosts),
            "maxConnections": config.api_max_connections,
            "gui": {"enabled": True, "basePath": "/gui", "maxEventClients": config.api_max_event_clients},
        },
        "dpServer": {
            "interface": config.xds_host, "port": xds_port, "tls": tls,
            "authn": {"dpProxy": {"type": "dpToken" if config.dataplane_auth == "token" else "none"}},
            "maxReceiveBytes": config.xds_max_receive_bytes, "maxConnections": config.xds_max_connections,
        },
        "xdsServer": {"debounce": f"{config.debounce_s}s", "debounceFirst": f"{config.debounce_first_s}s",
                      "maxWait": f"{config.max_wait_s}s"},
        "tokens": {"signingKeyFile": _path(signing_key_path(config.store_url, config.signing_key_file)),
                   "adminTokenFile": _path(config.admin_token_file),
                   "revocationPollInterval": f"{config.revocation_poll_s}s"},
    }
