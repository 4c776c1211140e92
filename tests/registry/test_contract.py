"""The registry contract: every backend (memory, SQLite, PostgreSQL) passes these.

Most tests go through :class:`~headwater.registry.ModelRegistry` with local artifacts,
so they cover what users see; a few call the backend directly for the rules it must
keep atomically on its own (numbering, parents, compare-and-set alias moves).
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
import pytest

from headwater.errors import (
    AliasError,
    UnknownAliasError,
    UnknownModelError,
    UnknownVersionError,
    ValidationError,
    VersionExistsError,
)
from headwater.registry import (
    AliasMove,
    Artifact,
    CodeVersion,
    Creator,
    Lineage,
    ModelRegistry,
    ModelVersion,
    OffsetRange,
    RegistryBackend,
    TopicSlice,
    TrainingSlice,
)
from headwater.time import ManualClock
from tests.registry.conftest import MakeArtifact
from tests.registry.harness import START_US, Harness

ARTIFACT = Artifact(sha256="ab" * 32, files=1, bytes=3)


def full_lineage(parent: int | None = None) -> Lineage:
    return Lineage(
        parent=parent,
        training=TrainingSlice(
            topics=(TopicSlice(topic="payments", ranges=(
                OffsetRange(partition=0, start=10, end=20),
                OffsetRange(partition=1, start=0, end=5))),),
            event_time_start=START_US - 1_000, event_time_end=START_US,
            examples=15, examples_sha256="cd" * 32,
        ),
        feature_set="fs-" + "12" * 8,
        code=CodeVersion(package="trainer", version="1.2", git_commit="a" * 40),
        hyperparameters={"lr": 0.01, "layers": [64, 32], "loss": "log", "warm": True, "x": None},
        metrics={"logloss": 0.31, "auc": 0.8},
        created_by=Creator(trainer="continual", trigger="volume", reason="1000 new labels"),
    )


def numbers(versions: Sequence[ModelVersion]) -> list[int]:
    return [v.version for v in versions]


def branching(registry: ModelRegistry, make_artifact: MakeArtifact) -> None:
    """churn: 1 → 2 → 3 → 4, 2 → 5 → 6, 1 → 7, and 8 from scratch."""
    parents = {1: None, 2: 1, 3: 2, 4: 3, 5: 2, 6: 5, 7: 1, 8: None}
    for number, parent in parents.items():
        registry.register("churn", make_artifact(f"v{number}"), lineage=Lineage(parent=parent))


def test_register_numbers_versions_and_records_everything(
        registry: ModelRegistry, make_artifact: MakeArtifact, clock: ManualClock) -> None:
    first = registry.register("churn", make_artifact("a"), lineage=full_lineage())
    clock.advance(5)
    second = registry.register("churn", make_artifact("b"), lineage=full_lineage(parent=1))
    assert (first.version, second.version) == (1, 2)
    assert first.status == "candidate"
    assert first.status_reason is None
    assert first.created_at == START_US
    assert second.created_at == START_US + 5
    assert first.lineage == msgspec.structs.replace(full_lineage(), created_at=START_US)
    assert registry.get("churn", 1) == first
    assert registry.get("churn", 2) == second
    assert registry.versions("churn") == [first, second]
    assert second.lineage.hyperparameters["layers"] == [64, 32]
    assert second.lineage.training == full_lineage().training
    assert second.lineage.created_by.trigger == "volume"
    assert second.parent == 1


def test_defaults_fill_code_version_and_time(
        registry: ModelRegistry, make_artifact: MakeArtifact) -> None:
    version = registry.register("churn", make_artifact())
    assert version.lineage.code is not None
    assert version.lineage.code.package == "headwater"
    assert version.lineage.created_at == START_US
    assert version.parent is None


def test_versions_are_immutable(registry: ModelRegistry, make_artifact: MakeArtifact,
                                backend: RegistryBackend) -> None:
    registry.register("churn", make_artifact("a"), version=10)
    assert registry.register("churn", make_artifact("b")).version == 11
    with pytest.raises(VersionExistsError, match="immutable"):
        registry.register("churn", make_artifact("c"), version=10)
    with pytest.raises(VersionExistsError):  # the backend refuses on its own, atomically
        backend.add_version("churn", 11, ARTIFACT, Lineage(created_at=START_US))
    assert numbers(registry.versions("churn")) == [10, 11]


def test_models_are_numbered_independently(registry: ModelRegistry,
                                           make_artifact: MakeArtifact) -> None:
    registry.register("churn", make_artifact())
    registry.register("churn", make_artifact())
    assert registry.register("fraud", make_artifact()).version == 1
    summaries = registry.models()
    assert [(m.name, m.versions, m.latest) for m in summaries] == [("churn", 2, 2), ("fraud", 1, 1)]
    with pytest.raises(ValidationError) as caught:  # a parent is a version of the same model
        registry.register("fraud", make_artifact(), lineage=Lineage(parent=2))
    assert caught.value.field == "lineage.parent"


def test_a_missing_parent_names_the_field(registry: ModelRegistry, make_artifact: MakeArtifact,
                                          backend: RegistryBackend) -> None:
    with pytest.raises(ValidationError) as caught:
        registry.register("churn", make_artifact(), lineage=Lineage(parent=1))
    assert caught.value.field == "lineage.parent"
    with pytest.raises(UnknownModelError):  # nothing was recorded
        registry.versions("churn")
    with pytest.raises(ValidationError, match=r"lineage\.parent"):
        backend.add_version("churn", None, ARTIFACT, Lineage(parent=3, created_at=1))
    assert registry.models() == []


def test_unknown_names(registry: ModelRegistry, make_artifact: MakeArtifact) -> None:
    for call in (lambda: registry.get("nope", 1), lambda: registry.versions("nope"),
                 lambda: registry.aliases("nope"), lambda: registry.history("nope"),
                 lambda: registry.ancestors("nope", 1), lambda: registry.descendants("nope", 1),
                 lambda: registry.get("nope", "champion"), lambda: registry.lineage_tree("nope"),
                 lambda: registry.promote("nope", 1, actor="a", reason="r")):
        with pytest.raises(UnknownModelError, match="unknown model 'nope'"):
            call()
    registry.register("churn", make_artifact())
    for call in (lambda: registry.get("churn", 2), lambda: registry.ancestors("churn", 2),
                 lambda: registry.descendants("churn", 2), lambda: registry.reject("churn", 2,
                                                                                   reason="r"),
                 lambda: registry.promote("churn", 2, actor="a", reason="r")):
        with pytest.raises(UnknownVersionError, match="has no version 2"):
            call()
    with pytest.raises(UnknownAliasError, match="no alias 'champion'"):
        registry.get("churn", "champion")
    with pytest.raises(UnknownAliasError):
        registry.remove_alias("churn", "champion", actor="a", reason="r")


@pytest.mark.parametrize(("call", "field"), [
    (lambda r, d: r.register("bad name", d), "name"),
    (lambda r, d: r.register("../up", d), "name"),
    (lambda r, d: r.register("m", d, version=0), "version"),
    (lambda r, d: r.get("m", 0), "ref"),
    (lambda r, d: r.get("m", "Champion"), "ref"),
    (lambda r, d: r.promote("m", 1, "9lives", actor="a", reason="r"), "alias"),
    (lambda r, d: r.ancestors("m", 1, limit=-1), "limit"),
    (lambda r, d: r.set_status("m", 1, "gone", reason="r"), "status"),
    (lambda r, d: r.reject("m", 1, reason=" "), "reason"),
    (lambda r, d: r.promote("m", 1, actor="", reason="r"), "actor"),
    (lambda r, d: r.rollback("m", actor="a", reason=""), "reason"),
])
def test_bad_inputs_name_the_field(registry: ModelRegistry, make_artifact: MakeArtifact,
                                   call: object, field: str) -> None:
    registry.register("m", make_artifact())
    registry.register("m", make_artifact("two"))
    registry.promote("m", 2, actor="a", reason="r")
    with pytest.raises(ValidationError) as caught:
        call(registry, make_artifact())  # type: ignore[operator]
    assert caught.value.field == field


def test_lineage_queries_on_a_branching_tree(registry: ModelRegistry,
                                             make_artifact: MakeArtifact) -> None:
    branching(registry, make_artifact)
    assert numbers(registry.ancestors("churn", 4)) == [3, 2, 1]
    assert numbers(registry.ancestors("churn", 6)) == [5, 2, 1]
    assert numbers(registry.ancestors("churn", 6, limit=2)) == [5, 2]
    assert numbers(registry.ancestors("churn", 6, limit=0)) == []
    assert numbers(registry.ancestors("churn", 1)) == []
    assert numbers(registry.descendants("churn", 1)) == [2, 3, 4, 5, 6, 7]
    assert numbers(registry.descendants("churn", 2)) == [3, 4, 5, 6]
    assert numbers(registry.descendants("churn", 4)) == []
    assert numbers(registry.descendants("churn", 8)) == []
    tree = registry.lineage_tree("churn")
    assert tree.roots == (1, 8)
    assert tree.children[1] == (2, 7)
    assert tree.children[2] == (3, 5)
    part = registry.lineage_tree("churn", 5)
    assert sorted(part.versions) == [1, 2, 5, 6]
    assert part.roots == (1,)


def test_lineage_queries_follow_aliases(registry: ModelRegistry,
                                        make_artifact: MakeArtifact) -> None:
    branching(registry, make_artifact)
    registry.promote("churn", 6, actor="a", reason="r")
    assert numbers(registry.ancestors("churn", "champion")) == [5, 2, 1]
    assert registry.lineage_tree("churn").aliases == {6: ("champion",)}


def test_promote_lookup_and_history(registry: ModelRegistry, make_artifact: MakeArtifact,
                                    clock: ManualClock) -> None:
    branching(registry, make_artifact)
    first = registry.promote("churn", 3, actor="ada", reason="first champion")
    clock.advance(10)
    second = registry.promote("churn", 4, actor="loop", reason="logloss 0.30 < 0.31")
    registry.promote("churn", 6, "challenger", actor="loop", reason="A/B")
    assert registry.get("churn", "champion").version == 4
    assert registry.aliases("churn") == {"challenger": 6, "champion": 4}
    assert (first.from_version, first.to_version, first.kind) == (None, 3, "promote")
    assert (second.from_version, second.to_version, second.at) == (3, 4, START_US + 10)
    assert (second.actor, second.reason) == ("loop", "logloss 0.30 < 0.31")
    assert first.seq < second.seq
    champion = registry.history("churn", "champion")
    assert champion == [first, second]
    assert [m.alias for m in registry.history("churn")] == ["champion", "champion", "challenger"]
    assert registry.promote("churn", 4, actor="x", reason="again") == second  # nothing recorded
    assert len(registry.history("churn")) == 3


def test_rollback_undoes_moves_in_turn(registry: ModelRegistry,
                                       make_artifact: MakeArtifact) -> None:
    branching(registry, make_artifact)
    for number in (2, 3, 4):
        registry.promote("churn", number, actor="loop", reason=f"v{number}")
    back = registry.rollback("churn", actor="oncall", reason="v4 misbehaves")
    assert (back.from_version, back.to_version, back.kind) == (4, 3, "rollback")
    assert registry.get("churn", "champion").version == 3
    registry.rollback("churn", actor="oncall", reason="v3 too")
    assert registry.get("churn", "champion").version == 2
    with pytest.raises(AliasError, match="nothing to roll back to"):
        registry.rollback("churn", actor="oncall", reason="and v2")
    registry.promote("churn", 6, actor="loop", reason="v6")
    registry.rollback("churn", actor="oncall", reason="v6 bad")
    assert registry.get("churn", "champion").version == 2
    history = registry.history("churn", "champion")
    assert [(m.kind, m.from_version, m.to_version) for m in history] == [
        ("promote", None, 2), ("promote", 2, 3), ("promote", 3, 4), ("rollback", 4, 3),
        ("rollback", 3, 2), ("promote", 2, 6), ("rollback", 6, 2)]


def test_rollback_of_a_removal_and_of_nothing(registry: ModelRegistry,
                                              make_artifact: MakeArtifact) -> None:
    branching(registry, make_artifact)
    with pytest.raises(AliasError, match="no move to roll back"):
        registry.rollback("churn", "challenger", actor="a", reason="r")
    registry.promote("churn", 5, "challenger", actor="a", reason="try v5")
    removed = registry.remove_alias("churn", "challenger", actor="a", reason="A/B over")
    assert (removed.from_version, removed.to_version, removed.kind) == (5, None, "remove")
    assert "challenger" not in registry.aliases("churn")
    registry.rollback("churn", "challenger", actor="a", reason="one more day")
    assert registry.aliases("churn") == {"challenger": 5}


def test_moves_are_compare_and_set(backend: RegistryBackend, registry: ModelRegistry,
                                   make_artifact: MakeArtifact) -> None:
    branching(registry, make_artifact)
    registry.promote("churn", 2, actor="a", reason="r")
    stale = AliasMove(model="churn", alias="champion", from_version=1, to_version=3,
                      kind="promote", actor="a", reason="r", at=START_US)
    with pytest.raises(AliasError, match="moved meanwhile"):
        backend.move_alias(stale)
    with pytest.raises(UnknownVersionError):
        backend.move_alias(msgspec.structs.replace(stale, from_version=2, to_version=99))
    assert registry.get("churn", "champion").version == 2
    assert len(registry.history("churn")) == 1


def test_status_rejected_with_reason_and_archived(
        registry: ModelRegistry, make_artifact: MakeArtifact, clock: ManualClock) -> None:
    branching(registry, make_artifact)
    clock.advance(7)
    rejected = registry.reject("churn", 3, reason="AUC 0.71 < champion 0.74")
    assert (rejected.status, rejected.status_reason) == ("rejected", "AUC 0.71 < champion 0.74")
    assert rejected.status_at == START_US + 7
    assert registry.get("churn", 3) == rejected
    assert registry.get("churn", 3).lineage == registry.get("churn", 3).lineage  # kept whole
    with pytest.raises(AliasError, match="is rejected"):
        registry.promote("churn", 3, actor="a", reason="r")
    assert registry.archive("churn", 3).status == "archived"
    registry.promote("churn", 4, actor="a", reason="r")
    with pytest.raises(AliasError, match="move the alias"):
        registry.reject("churn", 4, reason="too late")
    assert registry.set_status("churn", 3, "candidate").status == "candidate"
    registry.promote("churn", 3, actor="a", reason="after all")


def test_rollback_refuses_a_rejected_target(registry: ModelRegistry,
                                            make_artifact: MakeArtifact) -> None:
    branching(registry, make_artifact)
    registry.promote("churn", 2, actor="a", reason="r")
    registry.promote("churn", 3, actor="a", reason="r")
    registry.reject("churn", 2, reason="found a leak")
    with pytest.raises(AliasError, match="is rejected"):
        registry.rollback("churn", actor="a", reason="r")
    assert registry.get("churn", "champion").version == 3


def test_records_survive_a_restart(harness: Harness, backend: RegistryBackend,
                                   registry: ModelRegistry, make_artifact: MakeArtifact) -> None:
    branching(registry, make_artifact)
    registry.promote("churn", 4, actor="a", reason="r")
    registry.reject("churn", 7, reason="no")
    before = (registry.versions("churn"), registry.history("churn"), registry.models())
    again = ModelRegistry(harness.reopen(backend), registry.artifacts, clock=registry.clock)
    assert (again.versions("churn"), again.history("churn"), again.models()) == before
    assert again.register("churn", make_artifact("next")).version == 9
