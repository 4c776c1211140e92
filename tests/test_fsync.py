"""atomic_write: the file is whole or absent, temporary files go away, the mode is the
settings' one."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
from pathlib import Path
from typing import BinaryIO

import pytest

from headwater.errors import ConfigError
from headwater.fsync import FsyncPolicy, atomic_write, is_temporary, stage, staged_name, syncs


@pytest.mark.parametrize("policy", ["always", "group", "never"])
def test_replaces_the_content_whole(tmp_path: Path, policy: FsyncPolicy) -> None:
    target = tmp_path / "state.json"
    atomic_write(target, b"first", fsync=policy)
    atomic_write(target, lambda f: f.write(b"second, longer"), fsync=policy)
    assert target.read_bytes() == b"second, longer"
    assert os.listdir(tmp_path) == ["state.json"]


def test_a_failing_writer_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "offsets"
    atomic_write(target, b"old", fsync="always")

    def half(file: BinaryIO) -> None:
        file.write(b"ne")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, half, fsync="always")
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["offsets"]


def test_a_process_killed_mid_write_leaves_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "CURRENT"
    atomic_write(target, b"ckpt-1", fsync="always")
    script = (
        "import os, signal, sys\n"
        "from headwater.fsync import atomic_write\n"
        "def die(f):\n"
        "    f.write(b'ckpt-'); f.flush(); os.kill(os.getpid(), signal.SIGKILL)\n"
        "atomic_write(sys.argv[1], die, fsync='always')\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(target)], check=False)
    assert done.returncode == -9
    assert target.read_bytes() == b"ckpt-1"
    [left] = set(os.listdir(tmp_path)) - {"CURRENT"}
    assert is_temporary(left)
    assert left.startswith(".CURRENT.")


def test_threads_writing_one_file_never_mix(tmp_path: Path) -> None:
    target = tmp_path / "shared"
    contents = [bytes([65 + i]) * 100_000 for i in range(8)]

    def write(data: bytes) -> None:
        for _ in range(20):
            atomic_write(target, data, fsync="never")

    threads = [threading.Thread(target=write, args=(c,)) for c in contents]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert target.read_bytes() in contents
    assert os.listdir(tmp_path) == ["shared"]


@pytest.mark.parametrize(("setting", "expected"), [(None, 0o600), ("640", 0o640),
                                                   ("660", 0o660)])
def test_the_file_mode_setting_decides_the_permissions(tmp_path: Path, setting: str | None,
                                                       expected: int) -> None:
    target = tmp_path / "file"
    env = {} if setting is None else {"HEADWATER_FILE_MODE": setting}
    script = (
        "import os, sys\n"
        "from headwater.config import Settings\n"
        "from headwater.fsync import atomic_write\n"
        f"os.umask(Settings.from_env({env!r}).umask)\n"
        "atomic_write(sys.argv[1], b'x', fsync='never')\n"
    )
    subprocess.run([sys.executable, "-c", script, str(target)], check=True)
    assert stat.S_IMODE(target.stat().st_mode) == expected


def test_a_staged_file_is_temporary_until_installed(tmp_path: Path) -> None:
    temp = stage(tmp_path / "part.parquet", b"rows", fsync="always")
    assert temp.parent == tmp_path
    assert is_temporary(temp.name)
    assert not (tmp_path / "part.parquet").exists()


def test_an_unknown_policy_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="fsync: expected always, group or never, got 'yes'"):
        atomic_write(tmp_path / "x", b"", fsync="yes")  # type: ignore[arg-type]
    assert os.listdir(tmp_path) == []
    assert syncs("group")
    assert not syncs("never")


def test_a_temporary_file_names_the_file_it_becomes(tmp_path: Path) -> None:
    temp = stage(tmp_path / "s-0-000000000007-0.parquet", b"rows", fsync="never")
    assert staged_name(temp.name) == "s-0-000000000007-0.parquet"
    assert staged_name("s-0-000000000007-0.parquet") is None
