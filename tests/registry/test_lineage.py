"""Lineage records: JSON round trips, and bad records rejected with the field's path."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from headwater.errors import ValidationError
from headwater.registry import (
    CodeVersion,
    Creator,
    Lineage,
    MemoryRegistryBackend,
    ModelRegistry,
    OffsetRange,
    TopicSlice,
    TrainingSlice,
    check_lineage,
    decode_lineage,
    encode_lineage,
)
from headwater.registry.artifacts import LocalArtifacts
from tests.registry.conftest import MakeArtifact
from tests.registry.test_contract import full_lineage


def test_json_round_trip() -> None:
    lineage = full_lineage(parent=4)
    text = encode_lineage(lineage)
    assert decode_lineage(text) == lineage
    assert msgspec.json.decode(text)["training"]["topics"][0]["ranges"][1] == {
        "partition": 1, "start": 0, "end": 5}
    assert check_lineage(lineage) == lineage


def slice_with(**changes: Any) -> dict[str, Any]:
    raw: dict[str, Any] = msgspec.to_builtins(full_lineage())
    for path, value in changes.items():
        target: Any = raw
        *parents, last = path.split("__")
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        target[last] = value
    return raw


@pytest.mark.parametrize(("changes", "field", "reason"), [
    ({"parent": 0}, "lineage.parent", ">= 1"),
    ({"training__topics__0__ranges__0__partition": -1},
     "lineage.training.topics[0].ranges[0].partition", ">= 0"),
    ({"training__topics__0__ranges__0__end": 3},
     "lineage.training.topics[0].ranges[0]", "end 3 is before start 10"),
    ({"training__topics__0__ranges__1__partition": 0},
     "lineage.training.topics[0]", "names a partition twice"),
    ({"training__topics__0__topic": ""}, "lineage.training.topics[0].topic", "length >= 1"),
    ({"training__examples": -5}, "lineage.training.examples", ">= 0"),
    ({"training__examples_sha256": "not-a-hash"}, "lineage.training.examples_sha256",
     "matching regex"),
    ({"training__event_time_end": 0}, "lineage.training", "before event_time_start"),
    ({"created_by__trigger": "cron"}, "lineage.created_by.trigger", "Invalid enum value"),
    ({"metrics__auc": "high"}, "lineage.metrics[...]", "Expected `float`"),
    ({"hyperparameters__nested": {"a": 1}}, "lineage.hyperparameters[...]", "Expected"),
    ({"code__git_commit": "abc"}, "lineage.code.git_commit", "matching regex"),
    ({"surprise": 1}, "lineage.surprise", "unknown field `surprise`"),
])
def test_bad_records_name_the_field(changes: dict[str, Any], field: str, reason: str) -> None:
    with pytest.raises(ValidationError) as caught:
        decode_lineage(msgspec.json.encode(slice_with(**changes)))
    assert caught.value.field == field
    assert reason in caught.value.reason


def test_records_built_in_python_are_checked_too() -> None:
    bad = Lineage(training=TrainingSlice(examples=-1))  # structs do not check on creation
    with pytest.raises(ValidationError) as caught:
        check_lineage(bad)
    assert caught.value.field == "lineage.training.examples"
    with pytest.raises(ValidationError) as nan:
        check_lineage(Lineage(metrics={"auc": float("nan")}))
    assert nan.value.field == "lineage.metrics.auc"
    with pytest.raises(ValidationError, match="expected a Lineage"):
        check_lineage({"parent": 1})  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="not JSON"):
        decode_lineage(b"{")


def test_offset_ranges_check_themselves() -> None:
    with pytest.raises(ValueError, match="before start"):
        OffsetRange(partition=0, start=5, end=4)
    with pytest.raises(ValueError, match="twice"):
        TopicSlice(topic="t", ranges=(OffsetRange(partition=0, start=0, end=1),
                                      OffsetRange(partition=0, start=1, end=2)))


def test_register_refuses_a_bad_lineage_before_storing(
        tmp_path: Any, make_artifact: MakeArtifact) -> None:
    registry = ModelRegistry(MemoryRegistryBackend(), LocalArtifacts(tmp_path / "a", fsync="never"))
    bad = Lineage(created_by=Creator(trainer=""), code=CodeVersion(package="p"))
    with pytest.raises(ValidationError) as caught:
        registry.register("churn", make_artifact(), lineage=bad)
    assert caught.value.field == "lineage.created_by.trainer"
    assert not (tmp_path / "a").exists()
