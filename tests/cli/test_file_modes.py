"""Files the commands create are the owner's only, whatever the umask (022 here, the
common default that makes new files world-readable); HEADWATER_FILE_MODE relaxes it."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

PROJECT = textwrap.dedent(
    """
    from headwater.features import Entity, Feature, FeatureSet, Lifetime, StreamSource
    user = Entity("user", key="user")
    events = StreamSource.of("events")
    total = Feature.of("total", user, events, "sum", column="x", window=Lifetime())
    fs = FeatureSet("fs", (total,))
    """
)


def headwater(tmp_path: Path, env: dict[str, str], *args: str) -> None:
    done = subprocess.run([sys.executable, "-m", "headwater", *args], cwd=tmp_path,
                          env={**os.environ, **env}, capture_output=True, text=True,
                          preexec_fn=lambda: os.umask(0o022), timeout=120)
    assert done.returncode == 0, done.stderr


def modes(home: Path) -> dict[str, set[str]]:
    """The permission bits of every file and every directory under ``home`` (itself too)."""
    found: dict[str, set[str]] = {"files": set(), "dirs": {oct(stat.S_IMODE(home.stat().st_mode))}}
    for path in home.rglob("*"):
        kind = "dirs" if path.is_dir() else "files"
        found[kind].add(oct(stat.S_IMODE(path.stat().st_mode)))
    return found


@pytest.mark.parametrize(("setting", "files", "dirs"), [(None, "0o600", "0o700"),
                                                        ("640", "0o640", "0o750")])
def test_data_files_are_private_under_umask_022(tmp_path: Path, setting: str | None,
                                                files: str, dirs: str) -> None:
    home = tmp_path / "home"
    env = {"HEADWATER_HOME": str(home), "HEADWATER_FSYNC": "never"}
    if setting is not None:
        env["HEADWATER_FILE_MODE"] = setting
    (tmp_path / "features.py").write_text(PROJECT)
    (tmp_path / "events.csv").write_text("user,x,ts\na,1.0,2024-05-01T09:30:00Z\n"
                                         "b,2.0,2024-05-01T09:31:00Z\n")
    headwater(tmp_path, env, "topics", "create", "events", "--schema",
              "user:string,x:float64,ts:timestamp", "--key", "user", "--event-time", "ts")
    headwater(tmp_path, env, "produce", "events", "events.csv")
    headwater(tmp_path, env, "features", "apply")
    headwater(tmp_path, env, "features", "run", "--idle-timeout", "0")
    headwater(tmp_path, env, "labels", "run", "--idle-timeout", "0")
    headwater(tmp_path, env, "train", "--model", "m", "--from", "2024-01-01T00:00:00Z",
              "--to", "2025-01-01T00:00:00Z")
    made = {p.relative_to(home).parts[0] for p in home.rglob("*")}
    assert made >= {"log", "online", "features", "labels", "registry"}
    assert any(p.suffix == ".seg" for p in home.rglob("*"))
    assert (home / "registry" / "registry.db").exists()
    assert any(p.suffix == ".parquet" for p in (home / "features" / "history").rglob("*"))
    assert modes(home) == {"files": {files}, "dirs": {dirs}}


def test_a_bad_file_mode_is_refused(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "headwater", "topics", "list"], cwd=tmp_path,
                          env={**os.environ, "HEADWATER_FILE_MODE": "700",
                               "HEADWATER_HOME": str(tmp_path / "home")},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "HEADWATER_FILE_MODE: expected octal read/write bits" in done.stderr
    assert not (tmp_path / "home").exists()
