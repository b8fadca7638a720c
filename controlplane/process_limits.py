"""File descriptors of the `controlplane run` process: raise the soft limit, then share it out.

Why: every TCP connection is a descriptor. With the common default soft limit of 1 024, 1 100 connections
that never spoke took them all: ADS and the HTTP API both stopped accepting (the store could not open a
file either) until gRPC's two-minute handshake timeout. Three measures, of which this module is two:
- the soft `RLIMIT_NOFILE` is raised to the hard limit (what the operator or container allows; many
  systems ship 1 024 soft / 524 288 hard), so the default soft limit is not the ceiling;
- the descriptors are budgeted: ADS (`grpc.max_allowed_incoming_connections`) and the API (api/listener.py)
  each get a bounded number of connections, and `RESERVED_FDS` stay free for the store, logs and the
  runtime, so a flood on one port refuses new connections on that port only. The API's share is counted
  twice: asyncio accepts up to a backlog's worth of connections before the first refused one is closed
  (measured: with a single share, flooding both ports at once hit the limit and asyncio's accept failed);
- (server.py, api/listener.py) connections that do not complete a handshake / send a request within a few
  seconds are closed, so a flood clears by itself.

Must not: be called from library code (`start_ads_server`, the API app, tests that embed them): process
limits belong to the process edge, `serve()` in cli/run.py.
"""

from __future__ import annotations

import resource
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import structlog

log = structlog.get_logger(__name__)

RESERVED_FDS: Final = 64
"""Left to everything but client connections: ~30 open at start (store, logs, epoll, gRPC's wake-up
sockets), plus a PostgreSQL pool of 10 and its LISTEN connection."""
API_SHARE: Final = 8
"""The API's share of the usable descriptors (1/8): it serves operators and tools, ADS serves every proxy."""
API_MAX_CONNECTIONS: Final = 1024
MIN_CONNECTIONS: Final = 8
_NR_OPEN: Final = Path("/proc/sys/fs/nr_open")
_FALLBACK_CEILING: Final = 1_048_576


@dataclass(frozen=True, slots=True)
class OpenFiles:
    """The soft RLIMIT_NOFILE before and after `raise_open_files_limit`, and the hard limit."""

    before: int
    soft: int
    hard: int
    error: str = ""
    """Why the limit could not be raised ("" when it was, or did not need to be)."""

    def log(self) -> None:
        """Logged by the caller once start-up succeeded (a start-up failure stays one line on stderr)."""
        if self.error:
            log.warning("open_files_limit_not_raised", soft=self.soft, hard=self.hard, error=self.error)
        elif self.soft > self.before:
            log.info("open_files_limit_raised", before=self.before, soft=self.soft, hard=self.hard)


@dataclass(frozen=True, slots=True)
class ConnectionBudget:
    """Most connections each listener may hold at once (see the module doc)."""

    ads: int
    api: int


def raise_open_files_limit() -> OpenFiles:
    """Raise the soft RLIMIT_NOFILE to the hard one (capped by the kernel's `nr_open` when the hard limit
    is unlimited); a refusal (some platforms cap lower) keeps the current soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = _ceiling() if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and target > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError) as exc:
            return OpenFiles(soft, soft, hard, str(exc))
        return OpenFiles(soft, target, hard)
    return OpenFiles(soft, soft, hard)


def connection_budget(open_files: int) -> ConnectionBudget:
    """Share `open_files` descriptors out: `RESERVED_FDS` kept back, the API 1/`API_SHARE` of the rest (at
    most `API_MAX_CONNECTIONS`) plus as much again for its accept burst (its listen backlog is its
    bound, api/listener.py), ADS everything else; never less than `MIN_CONNECTIONS` each."""
    usable = max(open_files - RESERVED_FDS, 3 * MIN_CONNECTIONS)
    api = max(MIN_CONNECTIONS, min(API_MAX_CONNECTIONS, usable // API_SHARE))
    return ConnectionBudget(ads=max(MIN_CONNECTIONS, usable - 2 * api), api=api)


def _ceiling() -> int:
    try:
        return int(_NR_OPEN.read_text())
    except (OSError, ValueError):
        return _FALLBACK_CEILING
