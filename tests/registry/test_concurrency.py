"""Two processes registering and promoting at once against one SQLite store."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import time
from pathlib import Path

from headwater.config import Settings
from headwater.registry import open_registry

PER_WORKER = 12

WORKER = """
import json, sys, time
from pathlib import Path
from headwater.config import Settings
from headwater.errors import AliasError
from headwater.registry import Lineage, open_registry

root, name, count = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
(root / f"ready-{name}").touch()
while not (root / "go").exists():
    time.sleep(0.001)
mine, parent = [], None
with open_registry(root / "registry", settings=Settings(fsync="never")) as registry:
    for i in range(count):
        source = root / "sources" / f"{name}-{i}"
        source.mkdir(parents=True)
        # every third artifact has the same bytes in both workers: stored once
        text = f"shared {i}" if i % 3 == 0 else f"{name} {i}"
        (source / "weights.txt").write_text(text)
        version = registry.register("churn", source, lineage=Lineage(parent=parent))
        mine.append(version.version)
        parent = version.version
        while True:
            try:
                registry.promote("churn", version.version, actor=name, reason=f"step {i}")
                break
            except AliasError:  # the other worker moved it between our read and our move
                continue
print(json.dumps(mine))
"""


def test_two_processes_register_and_promote_concurrently(tmp_path: Path) -> None:
    workers = [subprocess.Popen([sys.executable, "-c", WORKER, str(tmp_path), name,
                                 str(PER_WORKER)], stdout=subprocess.PIPE, text=True)
               for name in ("left", "right")]
    deadline = time.monotonic() + 60
    while not all((tmp_path / f"ready-{n}").exists() for n in ("left", "right")):
        assert time.monotonic() < deadline, "the workers did not start"
        time.sleep(0.01)
    (tmp_path / "go").touch()  # both have imported everything: start together
    outputs = [worker.communicate(timeout=120)[0] for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0], outputs
    left, right = (json.loads(output) for output in outputs)

    assert sorted(left + right) == list(range(1, 2 * PER_WORKER + 1))
    with open_registry(tmp_path / "registry", settings=Settings(fsync="never")) as registry:
        for chain in (left, right):
            assert [v.version for v in registry.ancestors("churn", chain[-1])] == chain[-2::-1]
            assert [v.version for v in registry.descendants("churn", chain[0])] == chain[1:]
        history = registry.history("churn", "champion")
        assert len(history) == 2 * PER_WORKER
        for before, after in itertools.pairwise(history):
            assert after.from_version == before.to_version  # no move was lost
        assert registry.get("churn", "champion").version == history[-1].to_version
        shared = {registry.get("churn", v).artifact.sha256 for v in (left[0], right[0])}
        assert len(shared) == 1
        for number in left + right:
            registry.verify("churn", number)
