"""Descriptor limit and budget of `controlplane run` (controlplane/process_limits.py).

`raise_open_files_limit` changes the calling process, so it runs in a child with lowered limits.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys

import pytest

from controlplane.process_limits import (
    API_MAX_CONNECTIONS,
    MIN_CONNECTIONS,
    RESERVED_FDS,
    ConnectionBudget,
    connection_budget,
)

CHILD = """
import json, resource
from controlplane.process_limits import raise_open_files_limit
limits = raise_open_files_limit()
print(json.dumps([limits.before, limits.soft, limits.hard, resource.getrlimit(resource.RLIMIT_NOFILE)[0]]))
"""


def run_child(soft: int, hard: int) -> list[int]:
    """CHILD in a fresh interpreter whose limits `sh`'s ulimit lowered just before exec."""
    done = subprocess.run(["sh", "-c", f'ulimit -Sn {soft} && ulimit -Hn {hard} && exec "$@"', "sh",
                           sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=60, check=True)
    result: list[int] = json.loads(done.stdout.splitlines()[-1])
    return result


@pytest.mark.parametrize(("open_files", "budget"), [
    (256, ConnectionBudget(ads=144, api=24)),
    (1024, ConnectionBudget(ads=720, api=120)),
    (20_000, ConnectionBudget(ads=20_000 - RESERVED_FDS - 2 * API_MAX_CONNECTIONS, api=API_MAX_CONNECTIONS)),
    (50, ConnectionBudget(ads=MIN_CONNECTIONS, api=MIN_CONNECTIONS)),
], ids=["256", "1024", "20000", "tiny"])
def test_connection_budget(open_files: int, budget: ConnectionBudget) -> None:
    assert connection_budget(open_files) == budget
    if open_files > RESERVED_FDS + 3 * MIN_CONNECTIONS:
        assert budget.ads + 2 * budget.api + RESERVED_FDS == open_files  # the API's accept burst counted


def test_soft_limit_raised_to_the_hard_limit() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(hard, 4096)
    assert run_child(256, target) == [256, target, target, target]


def test_soft_limit_already_at_the_hard_limit_is_kept() -> None:
    assert run_child(256, 256) == [256, 256, 256, 256]
