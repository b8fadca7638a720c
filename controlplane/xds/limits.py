"""How much one ADS stream may make the server hold: type URLs, subscribed names, client-supplied text.

Why: everything in a request is chosen by the client, before (`--dataplane-auth none`) or regardless of
authentication, and a stream lives for hours. Measured on the unbounded server: one 60 MB DiscoveryRequest
left ~430 MB resident, eight at once 2-3 GB, and 200 000 type URLs on one stream held ~460 MB (issue 11).
gRPC's receive cap (`--xds-max-receive-bytes`, server.py) bounds one message; the limits here bound what a
stream accumulates over many messages (delta subscriptions grow with every request, each new type URL
adds a `TypeState`), so the worst a hostile stream can pin is a few tens of MiB, independent of how long
it stays. A breach ends the stream with RESOURCE_EXHAUSTED and names the limit.

Why these numbers: a real Envoy asks for at most ~10 type URLs on ADS (LDS, RDS, SRDS, VHDS, CDS, EDS,
LEDS, SDS, RTDS, ECDS), with names a few dozen characters long, and one name per resource it needs: even a
proxy that reaches 30 000 services subscribes well under 100 000 names. Rejected alternative: one cap per
type (10 types x 100 000 names x long names is still hundreds of MiB per stream); the caps are per stream.

Pure, like stream_state.py: no gRPC, asyncio or logging; the servicer maps `LimitExceeded` to the status.
"""

from __future__ import annotations

from collections.abc import Iterable, Sized
from dataclasses import dataclass
from typing import Final

MAX_CLIENT_TEXT: Final = 4096
"""Client strings kept for status and logs (version_info, a NACK's error_detail) are cut to this length;
our versions are 16 characters and Envoy's NACK messages rarely pass 1 KiB."""


class LimitExceeded(Exception):
    """The client asked the stream to hold more than `StreamLimits` allows (RESOURCE_EXHAUSTED)."""

    def __init__(self, limit: str, message: str) -> None:
        super().__init__(message)
        self.limit = limit


@dataclass(frozen=True, slots=True)
class StreamLimits:
    """Per-stream bounds (see the module doc for the reasoning behind each default)."""

    max_type_urls: int = 16
    """Distinct type URLs one stream may request."""
    max_type_url_length: int = 256
    """Characters of one type URL (Envoy's longest is under 80)."""
    max_names: int = 100_000
    """Resource names in one request list, and subscribed on the stream over all its types."""
    max_name_chars: int = 8 * 1024 * 1024
    """Characters of all names subscribed on the stream over all its types."""

    def check_type_url(self, type_url: str, known: int) -> None:
        """A new type URL for a stream that already has `known` types."""
        if len(type_url) > self.max_type_url_length:
            raise LimitExceeded("type_url_length", f"type_url is longer than {self.max_type_url_length} "
                                                   f"characters ({len(type_url)})")
        if known >= self.max_type_urls:
            raise LimitExceeded("type_urls", f"more than {self.max_type_urls} distinct type URLs on one stream")

    def check_request_list(self, field: str, values: Sized, type_url: str) -> None:
        """One repeated field of a request, checked before any of it is copied into the stream's state."""
        if len(values) > self.max_names:
            raise LimitExceeded("names_per_request", f"{field} lists {len(values)} names for {type_url}; "
                                                     f"at most {self.max_names} per request")

    def check_subscribed(self, names: int, chars: int) -> None:
        """The stream's subscriptions, all types together, after applying a request."""
        if names > self.max_names:
            raise LimitExceeded("subscribed_names", f"the stream would subscribe to {names} resource names; "
                                                    f"at most {self.max_names} per stream")
        if chars > self.max_name_chars:
            raise LimitExceeded("subscribed_name_chars", f"the stream's subscribed names would total {chars} "
                                                         f"characters; at most {self.max_name_chars} per stream")


DEFAULT_LIMITS: Final = StreamLimits()


def name_chars(names: Iterable[str]) -> int:
    """Characters of `names`, the measure `max_name_chars` bounds."""
    return sum(len(name) for name in names)


def client_text(value: str) -> str:
    """A client-supplied string as the stream keeps it for status and logs (see MAX_CLIENT_TEXT)."""
    if len(value) <= MAX_CLIENT_TEXT:
        return value
    return f"{value[:MAX_CLIENT_TEXT]}... ({len(value) - MAX_CLIENT_TEXT} more characters)"
