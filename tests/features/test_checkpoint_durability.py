"""A feature checkpoint is flushed to disk as the fsync policy says: its files, its own
directory and the CURRENT pointer under ``always``/``group``, nothing under ``never``.

The fsync calls are observed with strace on a separate process committing a checkpoint.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.extras import REQUIRE_EXTRAS

_SCRIPT = """
import sys
from pathlib import Path
import numpy as np, pyarrow as pa
from headwater.features.checkpoint import Checkpoint, CheckpointStore
store = CheckpointStore(Path(sys.argv[1]), fsync=sys.argv[2])
store.commit(Checkpoint(1, 10, 5, {"f": "d"}), {"a": np.arange(3)}, pa.array(["x", "y", "z"]))
assert store.current() is not None
"""


def _synced(tmp_path: Path, policy: str) -> set[str]:
    """The paths under the checkpoint directory that were fsynced, staging names kept."""
    strace = shutil.which("strace")
    if strace is None:
        if REQUIRE_EXTRAS:
            pytest.fail("strace is not installed")
        pytest.skip("strace is not installed")
    folder = tmp_path / "ckpts"
    trace = tmp_path / "trace"
    subprocess.run([strace, "-f", "-y", "-e", "trace=fsync,fdatasync", "-o", str(trace),
                    sys.executable, "-c", _SCRIPT, str(folder), policy], check=True)
    calls = re.findall(r"f(?:data)?sync\(\d+<([^>]*)>\)\s*=\s*0", trace.read_text())
    root = str(folder)
    return {"." + p[len(root):] for p in calls if p == root or p.startswith(root + "/")}


@pytest.mark.parametrize("policy", ["always", "group"])
def test_a_syncing_policy_flushes_files_directory_and_pointer(tmp_path: Path,
                                                              policy: str) -> None:
    synced = _synced(tmp_path, policy)
    staging = "./.ckpt-000000000001.tmp"
    for name in ("state.npz", "keys.arrow", "meta.json"):
        assert f"{staging}/{name}" in synced
    assert staging in synced  # the names of its files, before it is renamed
    assert any(re.fullmatch(r"\./\.CURRENT\.\d+\.\d+\.tmp", p) for p in synced), synced
    assert "." in synced  # the renames of the checkpoint and of CURRENT


def test_never_flushes_nothing(tmp_path: Path) -> None:
    assert _synced(tmp_path, "never") == set()
