"""A registered artifact whose unpickling runs code, met by every component as a user
runs them — separate processes: ``train``, ``models reproduce``, ``models promote``,
``eval``, ``serve``. Without the registry's opt-in none of them unpickles it (the marker
file it would write never appears) and each says why; with it, it runs, which shows
the marker is a real witness."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import msgspec
import pyarrow as pa

from headwater.labels import TRAINING_EXAMPLES_SCHEMA, TRAINING_EXAMPLES_TOPIC
from headwater.log import Log
from headwater.log.embedded import EmbeddedBackend
from headwater.log.schema import TIMESTAMP
from headwater.registry import (
    AliasMove,
    Lineage,
    OffsetRange,
    TopicSlice,
    TrainingSlice,
    open_registry,
)
from headwater.store.online import EmbeddedOnlineStore
from tests.processes import Server, headwater, wait_for
from tests.registry.artifacts import malicious_artifact

PROJECT = """
from headwater.features import Entity, Feature, FeatureSet, Lifetime, StreamSource
user = Entity("user", key="user")
payments = StreamSource.of("payments")
spent = Feature.of("spent", user, payments, "sum", column="amount", window=Lifetime())
fs = FeatureSet("fs", (spent,))
"""
EXAMPLES = 40
HALF = EXAMPLES // 2  # the version's recorded slice: a stateful run learns the rest
TRUST = "headwater models trust --pickle"


def served_examples(home: Path, model: str) -> None:
    """``EXAMPLES`` training examples of ``model``, as the label joiner writes them."""
    now = int(time.time() * 1_000_000)
    with Log(EmbeddedBackend(home / "log", fsync="never")) as log:
        log.ensure_topic(TRAINING_EXAMPLES_TOPIC, TRAINING_EXAMPLES_SCHEMA)
        n = EXAMPLES
        log.append(TRAINING_EXAMPLES_TOPIC, pa.record_batch({
            "request_id": [f"r{i}" for i in range(n)], "entity": [f"u{i % 4}" for i in range(n)],
            "features": [msgspec.json.encode({"amount": 10.0 * i, "age": 20.0 + i})
                         for i in range(n)],
            "model": [model] * n, "version": pa.array([1] * n, pa.int64()),
            "score": [0.5] * n, "arm": ["champion"] * n, "served": [True] * n,
            "label": [float(i % 2) for i in range(n)], "source": ["outcome"] * n,
            "prediction_time": pa.array([now - 1000 + i for i in range(n)],
                                        pa.int64()).cast(TIMESTAMP),
            "label_time": pa.array([now + i for i in range(n)], pa.int64()).cast(TIMESTAMP),
        }, schema=TRAINING_EXAMPLES_SCHEMA.arrow_schema()))


def test_a_malicious_pickle_runs_in_no_component_without_the_opt_in(tmp_path: Path) -> None:
    home, marker = tmp_path / "home", tmp_path / "the-pickle-ran"
    served_examples(home, "evil")
    EmbeddedOnlineStore(home / "online").close()
    (tmp_path / "features.py").write_text(PROJECT)
    with open_registry(home / "registry") as registry:
        version = registry.register("evil", malicious_artifact(tmp_path / "evil", marker),
                                    lineage=Lineage(training=TrainingSlice(
                                        topics=(TopicSlice(topic=TRAINING_EXAMPLES_TOPIC, ranges=(
                                            OffsetRange(partition=0, start=0, end=HALF),)),),
                                        examples=HALF)))
        # what anyone with write access to the records can do: point the champion at it
        registry.backend.move_alias(AliasMove(
            model="evil", alias="champion", from_version=None, to_version=version.version,
            kind="promote", actor="mallory", reason="trust me", at=registry.clock.now_us()))

    def refused(done: subprocess.CompletedProcess[str], what: str) -> None:
        assert done.returncode == 1, (what, done)
        stderr = done.stderr
        assert "version 1 of evil cannot load: format 'river-pickle' is loaded with pickle" \
            in stderr, (what, stderr)
        assert TRUST in stderr, (what, stderr)
        assert "Traceback" not in stderr
        assert not marker.exists(), f"{what} ran the pickle"

    refused(headwater(home, "train", "--model", "evil", "--strategy", "stateful"), "train")
    refused(headwater(home, "models", "reproduce", "evil", "1"), "reproduce")
    refused(headwater(home, "eval", "prequential", "evil"), "eval")
    with open_registry(home / "registry") as registry:
        registry.backend.move_alias(AliasMove(
            model="evil", alias="champion", from_version=1, to_version=None, kind="remove",
            actor="mallory", reason="try promote", at=registry.clock.now_us()))
    promoted = headwater(home, "models", "promote", "evil", "1", "--reason", "trust me")
    refused(promoted, "promote")
    assert "alias 'champion' of model 'evil' was not moved" in promoted.stderr
    with open_registry(home / "registry") as registry:
        assert registry.aliases("evil") == {}
        registry.backend.move_alias(AliasMove(
            model="evil", alias="champion", from_version=None, to_version=1, kind="promote",
            actor="mallory", reason="again", at=registry.clock.now_us()))

    with Server(home, "--model", "evil", "--project", str(tmp_path / "features.py"),
                "--poll-ms", "100") as server:
        wait_for(lambda: "cannot load" in server.printed(), 60, "the reason printed")
        assert "warning: version 1 of evil cannot load: format 'river-pickle'" in \
            server.printed()
        assert TRUST in server.printed()
        status, body = server.get("/ready")
        assert status == 503
        assert body["ready"] is False
        assert body["reason"].startswith("version 1 of evil cannot load: format 'river-pickle'")
        assert TRUST in body["reason"]
        status, body = server.post("/predict", {"entities": {"user": "u1"},
                                                "request": {"amount": 3.0, "age": 40.0}})
        assert status == 503
        assert body["error"]["field"] == "model"
        assert "version 1 of evil cannot load" in body["error"]["reason"]
        assert "this registry does not trust pickle-based artifacts" in body["error"]["reason"]
        assert TRUST in body["error"]["reason"]
        assert not marker.exists(), "serve ran the pickle"
        # The witness: once the operator opts in, the server's next poll unpickles it.
        granted = headwater(home, "models", "trust", "--pickle", "--reason", "a mistake")
        assert granted.returncode == 0, granted.stderr
        wait_for(marker.exists, 60, "the pickle to run once trusted")
