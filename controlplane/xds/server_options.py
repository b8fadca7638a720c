"""gRPC server options of the ADS server: message sizes, handshake and idle timeouts, keepalive, port sharing.

Responsible for the transport-level bounds of the ADS port: what a connection may send and how long it may
stay without finishing its handshake or carrying a stream. The limits on what requests may ask a stream to
hold are limits.py's; README "Limits" lists both for operators. Must not: set process-wide tuning (that
is the process edge's, cli/run.py and process_limits.py).
"""

from __future__ import annotations

from typing import Final

MAX_SEND_BYTES: Final = 64 * 1024 * 1024
"""Responses are ours (a large mesh's CDS can pass gRPC's 4 MiB default); the client's receive cap applies."""
DEFAULT_MAX_RECEIVE_BYTES: Final = 4 * 1024 * 1024
"""Requests are the client's: Kuma's default (KUMA_..._XDS_GRPC_MAX_RECEIVE_MESSAGE_BYTES, 4 MiB). The largest
legitimate one is Envoy's first delta request after a reconnect, which lists every resource of a type it
holds with its version (reference/xds-protocol.md §2.8, envoy #36169): ~60 bytes per resource here (name +
16-character version), so 4 MiB is ~60 000 resources of one type. Unbounded, one 60 MB request left ~430 MB
resident and eight concurrent ones 2-3 GB; `--xds-max-receive-bytes` raises it."""
HANDSHAKE_TIMEOUT_MS: Final = 5_000
"""A connection must finish the (TLS and) HTTP/2 handshake within this; gRPC's default is 120 s, so 1 100
silent TCP connections held 1 024 file descriptors and starved every other client for two minutes."""
CONNECTION_IDLE_MS: Final = 30_000
"""A connection with no stream for this long gets GOAWAY (a proxy between reconnect attempts, Envoy's
back-off is at most 30 s, simply connects again). A healthy ADS connection always carries its stream, so
this never touches one. `grpc.max_connection_age_ms` is deliberately not set: it would reset every
long-lived ADS stream periodically, and each reset costs a full resend of the proxy's configuration."""


def server_options(*, max_receive_bytes: int = DEFAULT_MAX_RECEIVE_BYTES,
                   max_connections: int | None = None) -> tuple[tuple[str, int], ...]:
    """gRPC server options of the ADS server. `max_connections` (None = unbounded) caps accepted TCP
    connections, handshake included: the process edge (cli/run.py) derives it from the file descriptor
    limit so that a flood of connections to ADS cannot take the descriptors the HTTP API and the store
    need; gRPC closes connections above it at once."""
    options: list[tuple[str, int]] = [
        # No SO_REUSEPORT (gRPC sets it by default): a second control plane on the same port must fail to
        # bind instead of silently sharing, and splitting, the Envoys that connect.
        ("grpc.so_reuseport", 0),
        ("grpc.max_receive_message_length", max_receive_bytes),
        ("grpc.max_send_message_length", MAX_SEND_BYTES),
        ("grpc.server_handshake_timeout_ms", HANDSHAKE_TIMEOUT_MS),
        ("grpc.max_connection_idle_ms", CONNECTION_IDLE_MS),
        # Detect dead proxies (half-open TCP) within ~40 s without relying on the client's keepalive.
        ("grpc.keepalive_time_ms", 30_000),
        ("grpc.keepalive_timeout_ms", 10_000),
        ("grpc.keepalive_permit_without_calls", 1),
        # Accept Envoy's own HTTP/2 keepalive pings (often every 10-30 s) instead of answering GOAWAY
        # "too_many_pings", which would reset every ADS stream.
        ("grpc.http2.min_recv_ping_interval_without_data_ms", 5_000),
        ("grpc.http2.max_ping_strikes", 0),
    ]
    if max_connections is not None:
        options.append(("grpc.max_allowed_incoming_connections", max_connections))
    return tuple(options)


SERVER_OPTIONS: Final = server_options()
