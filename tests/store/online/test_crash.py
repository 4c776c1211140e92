"""Crash safety of the embedded online store, tested by killing a writer with SIGKILL."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from headwater.store.online import EmbeddedOnlineStore

NS = "ns"
HOT = 7  # the "hot" entity's features: batch k sets h{k % HOT}

# The writer resumes after the store's version: batch k writes its own entities
# b{k}:0 … b{k}:{n-1}, updates some features of the shared entity "hot", sets the blob
# of entity "big" (1 MiB every third batch, so that a kill can land inside the write
# and tear it), commits version k and meta offset k, then prints k. A small
# compact_bytes makes compactions frequent, so some kills land in one.
WRITER = textwrap.dedent(
    """
    import sys
    from headwater.store.online import EmbeddedOnlineStore

    root, fsync = sys.argv[1], sys.argv[2]
    store = EmbeddedOnlineStore(root, fsync=fsync, compact_bytes=32 * 1024)
    last = store.version("ns")
    k = 0 if last is None else last + 1
    while True:
        n = 1 + (k * 7919) % 12
        rows = [(f"b{k}:{i}", {f"f{j}": f"{k}:{i}:{j}".encode() for j in range(4)})
                for i in range(n)]
        rows.append(("hot", {f"h{k % 7}": str(k).encode(), "last": str(k).encode()}))
        rows.append(("big", {"blob": bytes([k % 251]) * (1 << 20 if k % 3 == 0 else 10)}))
        store.write("ns", rows, version=k, meta={"offset": str(k).encode()})
        sys.stdout.write(f"{k}\\n")
        sys.stdout.flush()
        k += 1
    """
)


def batch_rows(k: int) -> dict[str, dict[str, bytes]]:
    n = 1 + (k * 7919) % 12
    return {f"b{k}:{i}": {f"f{j}": f"{k}:{i}:{j}".encode() for j in range(4)} for i in range(n)}


def big_blob(k: int) -> bytes:
    return bytes([k % 251]) * (1 << 20 if k % 3 == 0 else 10)


def verify(store: EmbeddedOnlineStore, acked: int) -> int:
    """Every batch up to the version whole, none after it; return the version."""
    version = store.version(NS)
    assert version in (acked, acked + 1), f"version {version}, last acknowledged {acked}"
    if version is None:
        assert store.read(NS, "hot") == {}
        return -1
    assert store.meta_get(NS, "offset") == str(version).encode()
    for k in range(version + 1):
        rows = batch_rows(k)
        assert store.read_many(NS, list(rows)) == list(rows.values()), f"batch {k} damaged"
    for k in (version + 1, version + 2):
        assert store.read_many(NS, list(batch_rows(k))) == [{}] * len(batch_rows(k))
    hot = {f"h{j}": str(max(k for k in range(version + 1) if k % HOT == j)).encode()
           for j in range(HOT) if j <= version}
    assert store.read(NS, "hot") == {**hot, "last": str(version).encode()}
    assert store.read(NS, "big") == {"blob": big_blob(version)}
    return version


@pytest.mark.slow
@pytest.mark.parametrize("fsync", ["always", "group", "never"])
def test_sigkill_at_random_moments_loses_no_acknowledged_batch(tmp_path: Path,
                                                                fsync: str) -> None:
    rng = random.Random(20240611)
    root = tmp_path / "online"
    acked = -1
    for kill in range(20):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(root), fsync],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        if kill % 4 == 3:  # sometimes while it opens, replays or repairs
            time.sleep(rng.uniform(0.0, 0.4))
        else:
            first = proc.stdout.readline()
            if not first:
                pytest.fail(f"writer died: {proc.stderr.read() if proc.stderr else ''}")
            acked = max(acked, int(first))
            time.sleep(rng.uniform(0.0, 0.05))
        os.kill(proc.pid, signal.SIGKILL)
        # Read through the buffered pipe: readline() may already hold later acks.
        out = proc.stdout.read()
        err = proc.stderr.read() if proc.stderr else ""
        assert proc.wait(timeout=60) == -signal.SIGKILL, err
        acked = max([acked, *(int(line) for line in out.split())])
        reader = EmbeddedOnlineStore(root, read_only=True)  # does not repair
        try:
            acked = verify(reader, acked)  # a batch in flight may have landed
        finally:
            reader.close()
    assert acked > 20

    store = EmbeddedOnlineStore(root, fsync="never")  # repairs the torn tail, if any
    assert verify(store, acked) == acked
    store.write(NS, [("after", {"x": b"1"})], version=acked + 1)
    store.close()
    store = EmbeddedOnlineStore(root, fsync="never")
    assert store.read(NS, "after") == {"x": b"1"}
    assert store.version(NS) == acked + 1
    store.close()
