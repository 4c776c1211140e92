"""Two ``headwater train`` processes for one model: one trains, the other stands by;
killed, the first is replaced once its lease runs out, and the lineage stays one chain
in which every example is learnt once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from headwater.config import Settings
from headwater.labels import TRAINING_EXAMPLES_SCHEMA, TRAINING_EXAMPLES_TOPIC
from headwater.log import Log
from headwater.log.embedded import EmbeddedBackend
from headwater.registry import ModelRegistry, forks, open_registry
from tests.learning.test_trainer import Stream


class Trainer:
    """A ``headwater train`` process whose error output is collected as it comes."""

    def __init__(self, home: Path, *args: str) -> None:
        env = {**os.environ, "HEADWATER_HOME": str(home), "HEADWATER_FSYNC": "never"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "headwater", "train", "--model", "m", *args],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)

    def wait_for(self, text: str, timeout_s: float = 60.0) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = next((line for line in self.lines if text in line), None)
            if found is not None:
                return found
            assert self.proc.poll() is None, "".join(self.lines)
            time.sleep(0.05)
        raise AssertionError(f"no {text!r} in {''.join(self.lines)!r}")

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGINT)  # Ctrl-C: the trainer stops and lets go
        code = self.proc.wait(timeout=60)
        self._reader.join(timeout=10)
        return code


CONTINUAL = ("--strategy", "continual", "--volume", "200", "--margin", "10", "--poll", "0.1",
             "--lease", "2s")


def registry_of(home: Path) -> ModelRegistry:
    return open_registry(home / "registry", settings=Settings(home=str(home), fsync="never"))


def count_versions(home: Path) -> int:
    with registry_of(home) as registry:
        return len(registry.versions("m")) if registry.models() else 0


def wait_versions(home: Path, count: int, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while count_versions(home) < count:
        assert time.monotonic() < deadline, f"fewer than {count} versions"
        time.sleep(0.1)


@pytest.mark.slow
def test_one_trainer_trains_a_standby_takes_over_and_the_lineage_is_one_chain(
        tmp_path: Path) -> None:
    log = Log(EmbeddedBackend(tmp_path / "log", fsync="never"))
    stream = Stream(log)
    stream.add(100)
    first = Trainer(tmp_path, *CONTINUAL)
    first.wait_for("continual trainer of m running")
    second = Trainer(tmp_path, *CONTINUAL)
    standby = second.wait_for("standby:")
    assert f":{first.proc.pid} (continual-cli)" in standby  # who holds the model
    # every 200 examples: a version, each from the last (one at a time: a trainer slowed
    # by a loaded machine that read 400 at once would make one version of them)
    for n in range(1, 7):
        stream.add(200)
        wait_versions(tmp_path, n)
    time.sleep(0.5)
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait()
    second.wait_for("continual trainer of m running", timeout_s=60)  # its lease ran out
    have = count_versions(tmp_path)  # 6, or 7 with a version the killed one had not promoted
    for n in range(1, 4):  # the standby goes on from where the first stopped
        stream.add(200)
        wait_versions(tmp_path, have + n)
    assert second.stop() == 0
    log.close()

    with registry_of(tmp_path) as registry:
        versions = registry.versions("m")
        history = registry.history("m", "champion")
        parents = {v.version: v.parent for v in versions}
        assert forks(history, parents) == []
        # The champions form one chain, each the child of the one before. A version the
        # killed trainer registered but had not promoted yet may remain: a leaf, never
        # served, that the successor did not build on.
        served = [m.to_version for m in history if m.to_version is not None]
        assert served == sorted(served)
        assert [parents[v] for v in served] == [None, *served[:-1]]
        leaves = [v for v in parents if v not in served]
        assert len(leaves) <= 1
        assert all(v not in parents.values() for v in leaves)
        # every example learnt once along what was served: each champion's slice
        # starts where its parent's ended
        chain = [v for v in versions if v.version in served]
        ends = 0
        for version in chain:
            assert version.lineage.training is not None
            (topic,) = version.lineage.training.topics
            (part,) = topic.ranges
            assert part.start == ends
            ends = part.end
        assert ends >= 1_600
        assert registry.lease("m") is None  # the standby let it go when stopped


@pytest.mark.slow
def test_a_second_trainer_without_standby_refuses_naming_the_holder(tmp_path: Path) -> None:
    log = Log(EmbeddedBackend(tmp_path / "log", fsync="never"))
    log.create_topic(TRAINING_EXAMPLES_TOPIC, TRAINING_EXAMPLES_SCHEMA)
    log.close()
    first = Trainer(tmp_path, *CONTINUAL)
    first.wait_for("continual trainer of m running")
    env = {**os.environ, "HEADWATER_HOME": str(tmp_path), "HEADWATER_FSYNC": "never"}
    refused = subprocess.run(
        [sys.executable, "-m", "headwater", "train", "--model", "m", "--no-standby"],
        env=env, capture_output=True, text=True, timeout=120, check=False)
    assert refused.returncode != 0
    assert f":{first.proc.pid} (continual-cli)" in refused.stderr
    assert "is trained by" in refused.stderr
    assert first.stop() == 0
    again = subprocess.run(  # the first let go when it stopped: no wait for its lease
        [sys.executable, "-m", "headwater", "train", "--model", "m", "--no-standby"],
        env=env, capture_output=True, text=True, timeout=120, check=False)
    assert again.returncode == 0, again.stderr
    assert "nothing to learn" in again.stderr
