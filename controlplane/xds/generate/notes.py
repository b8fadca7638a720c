"""What generation decided per listener, kept beside the resources so inspection reports what was built
instead of re-deriving it (names, protocols, traced or not)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

NOT_HTTP: Final = "protocol is not http, http2 or grpc"
TRACING_OFF: Final = "tracing is off for this proxy"


@dataclass(frozen=True, slots=True)
class ListenerNote:
    """One generated listener: its name, direction (`inbound`/`outbound`), the service it serves or
    reaches, the protocol it was built for, whether its HCM traces, and if not, why."""

    listener: str
    direction: str
    service: str
    protocol: str
    traced: bool
    reason: str = ""


def listener_note(listener: str, direction: str, service: str, protocol: str, http: bool, traced: bool) -> ListenerNote:
    reason = "" if traced else (NOT_HTTP if not http else TRACING_OFF)
    return ListenerNote(listener, direction, service, protocol, traced, reason)
