"""Several label joiners over partitioned topics: whatever joins, leaves or takes a slot
over, the examples are the oracle's, each once."""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from headwater.errors import ConfigError
from headwater.labels import OUTCOMES_SCHEMA, TRAINING_EXAMPLES_TOPIC
from headwater.labels.join import JoinRule, LoggedPrediction, Outcome
from headwater.labels.joiner import LabelJoiner
from headwater.labels.progress import JoinStep
from headwater.log import Log
from headwater.serving.prediction_log import PREDICTIONS_SCHEMA, PREDICTIONS_TOPIC
from headwater.testing import ManualClock, MemoryBackend
from tests.labels.test_join import oracle
from tests.labels.test_joiner import outcomes, predictions

T0 = 1_700_000_000_000_000
END = T0 + (1 << 40)

Event = tuple[int, int, LoggedPrediction | Outcome]


@st.composite
def worlds(draw: st.DrawFn) -> tuple[JoinRule, list[LoggedPrediction], list[Outcome]]:
    """Requests of several entities and their outcomes; an outcome names its request and
    carries its entity (as the prediction service's outcomes do), or names none known."""
    rule = JoinRule(window=draw(st.integers(1, 20)),
                    timeout_label=draw(st.sampled_from([0.0, None])))
    n = draw(st.integers(0, 16))
    entities = [f"e{i}" for i in range(6)]
    preds = [LoggedPrediction(f"r{i}", draw(st.sampled_from(entities)), b'{"x": 1.0}', "m", 1, 0.5,
                        "champion", True, T0 + draw(st.integers(0, 60))) for i in range(n)]
    outs = []
    for _ in range(draw(st.integers(0, 16))):
        k = draw(st.integers(0, n + 1))
        entity = preds[k].entity if k < n else draw(st.sampled_from(entities))
        outs.append(Outcome(f"r{k}", entity, draw(st.sampled_from([None, 0.0, 1.0])),
                            T0 + draw(st.integers(0, 90))))
    return rule, preds, outs


def append(log: Log, chunk: list[Event]) -> None:
    ps = [e[2] for e in chunk if isinstance(e[2], LoggedPrediction)]
    os_ = [e[2] for e in chunk if isinstance(e[2], Outcome)]
    if ps:
        log.append(PREDICTIONS_TOPIC, predictions([p.request_id for p in ps],
                                                  [p.entity for p in ps], [p.ts for p in ps]))
    if os_:
        log.append("outcomes", outcomes([o.request_id for o in os_], [o.entity for o in os_],
                                        [o.label for o in os_], [o.ts for o in os_]))


def _read_ahead() -> tuple[JoinRule, list[LoggedPrediction], list[Outcome]]:
    """Found by exploring: read three at a time, one outcomes partition (14 outcomes of r0,
    then r1's) falls behind the other (r7's, later); r7's outcome must not close r1 before
    r1's own outcome is read."""
    preds = [LoggedPrediction(f"r{i}", "e0", b'{"x": 1.0}', "m", 1, 0.5, "champion", True, T0)
             for i in range(7)]
    outs = [*(Outcome("r0", "e0", None, T0) for _ in range(14)), Outcome("r1", "e0", None, T0),
            Outcome("r7", "e3", None, T0 + 2)]
    return JoinRule(window=1, timeout_label=0.0), preds, outs


@settings(max_examples=60, deadline=None)
@example(world=_read_ahead(), partitions=(4, 2), script=[])
@given(worlds(), st.sampled_from([(1, 1), (2, 2), (3, 3), (8, 8), (4, 2)]),
       st.lists(st.tuples(st.sampled_from(["append", "append", "step", "step", "join",
                                           "leave", "rogue", "rogue"]),
                          st.integers(1, 5)), max_size=40))
def test_joiners_coming_and_going_make_the_oracles_examples_once(
        world: tuple[JoinRule, list[LoggedPrediction], list[Outcome]], partitions: tuple[int, int],
        script: list[tuple[str, int]]) -> None:
    """Predictions and outcomes are appended in time order while members join the group,
    leave it (as a killed process does), step with small reads, and a joiner of another
    group — one the group does not know about, as a member that stalled past its session
    is — takes slots over now and then: every slot is claimed afresh each time, and a
    joiner claimed over is fenced. The examples are the oracle's, each once."""
    rule, preds, outs = world
    clock = ManualClock(T0 - 1_000)  # the clock's watermark closes nothing until the end
    log = Log(MemoryBackend(clock=clock), clock=clock)
    log.create_topic(PREDICTIONS_TOPIC, PREDICTIONS_SCHEMA, partitions=partitions[0])
    log.create_topic("outcomes", OUTCOMES_SCHEMA, partitions=partitions[1])
    events: list[Event] = sorted([(p.ts, 0, p) for p in preds] + [(o.ts, 1, o) for o in outs],
                                 key=lambda e: e[:2])
    with tempfile.TemporaryDirectory() as tmp:
        def joiner(group: str = "labels") -> LabelJoiner:
            return LabelJoiner(log, rule, state_dir=Path(tmp), clock=clock, fsync="never",
                               group=group, compact_bytes=300, retake_after_s=0.0)

        members = [joiner()]
        rogue: LabelJoiner | None = None
        at = 0
        for action, n in script:
            if action == "append":
                append(log, events[at:at + n])
                at += n
            elif action == "step":
                members[n % len(members)].step(max_events=n)
            elif action == "join":
                members.append(joiner())
            elif action == "leave" and len(members) > 1:
                members.pop(n % len(members)).close()
            elif action == "rogue":
                if rogue is None:
                    rogue = joiner("rogue")  # claims every slot, fencing their owners
                rogue.step(max_events=n)
                members[n % len(members)].step(max_events=n)  # fenced, then takes it back
        append(log, events[at:])
        for member in [*members, *([rogue] if rogue else [])]:
            member.close()
        clock.set(END)
        with joiner() as last:
            while last.step(max_events=3).predictions or last.step(max_events=3).outcomes:
                pass
            last.step()
    examples = [r for f in log.replay(TRAINING_EXAMPLES_TOPIC) for r in f.batch.to_pylist()]
    got = Counter((r["request_id"], r["label"], r["source"],
                   int(r["label_time"].timestamp() * 1e6) if r["label_time"] else None)
                  for r in examples)
    want, _ = oracle(rule, preds, outs)
    assert got == Counter(want)
    late = sum(f.batch.num_rows for f in log.replay("outcomes.late"))
    labelled = sum(1 for r in examples if r["source"] != "timeout")
    assert labelled + late == len(outs)  # every outcome labelled a request or is late


def test_a_joiner_claimed_over_is_fenced_and_appends_nothing(tmp_path: Path) -> None:
    """Two joiners that both believe they own the slots (two groups: nothing tells them
    apart): each claim fences the other, and the examples are those of one joiner."""
    clock = ManualClock(T0)
    log = Log(MemoryBackend(clock=clock), clock=clock)
    log.create_topic(PREDICTIONS_TOPIC, PREDICTIONS_SCHEMA, partitions=2)
    log.create_topic("outcomes", OUTCOMES_SCHEMA, partitions=2)
    rule = JoinRule(window=10_000_000)
    n = 40
    log.append(PREDICTIONS_TOPIC, predictions([f"r{i}" for i in range(n)],
                                              [f"u{i % 7}" for i in range(n)],
                                              [T0 + i for i in range(n)]))
    log.append("outcomes", outcomes([f"r{i}" for i in range(n)], [f"u{i % 7}" for i in range(n)],
                                    [float(i % 2) for i in range(n)],
                                    [T0 + 100 + i for i in range(n)]))
    first = LabelJoiner(log, rule, state_dir=tmp_path, clock=clock, fsync="never", group="a")
    said: list[str] = []
    first.progress.on_warning = said.append
    assert first.slots == ["partition-0", "partition-1"]
    assert first.step(max_events=1).predictions == 2
    second = LabelJoiner(log, rule, state_dir=tmp_path, clock=clock, fsync="never", group="b")
    assert first.step(max_events=1) == JoinStep(0, 0, 0, 0, 0)  # fenced: wrote nothing
    assert first.fenced == 2
    assert first.slots == []  # and leaves the slots alone for a while
    assert "another label joiner took it over" in said[0]
    while second.step(max_events=5).predictions:
        pass
    first.close()
    second.close()
    rows = [r for f in log.replay(TRAINING_EXAMPLES_TOPIC) for r in f.batch.to_pylist()]
    assert sorted(r["request_id"] for r in rows) == sorted(f"r{i}" for i in range(n))
    assert all(r["label"] == float(int(r["request_id"][1:]) % 2) for r in rows)


def test_a_joiner_with_other_state_refuses_to_append_a_step_twice(tmp_path: Path) -> None:
    """Joiners must share their state: one that starts with its own, empty, state on
    partitions another joiner already wrote (another machine's disk, a reset) finds its
    first step in the log already and stops, rather than append the examples twice."""
    clock = ManualClock(T0)
    log = Log(MemoryBackend(clock=clock), clock=clock)
    log.create_topic(PREDICTIONS_TOPIC, PREDICTIONS_SCHEMA)
    log.ensure_topic("outcomes", OUTCOMES_SCHEMA)
    rule = JoinRule(window=10_000_000)
    log.append(PREDICTIONS_TOPIC, predictions(["a"], ["u"], [T0]))
    log.append("outcomes", outcomes(["a"], ["u"], [1.0], [T0 + 1]))
    with LabelJoiner(log, rule, state_dir=tmp_path / "one", clock=clock, fsync="never") as one:
        assert one.step().examples == 1
    with LabelJoiner(log, rule, state_dir=tmp_path / "two", clock=clock, fsync="never") as two, \
            pytest.raises(ConfigError, match=r"already holds step 1 of label-joiner\.partition-0"):
        two.step()
    assert sum(f.batch.num_rows for f in log.replay(TRAINING_EXAMPLES_TOPIC)) == 1


def test_co_partitioned_topics_make_one_slot_per_partition(tmp_path: Path) -> None:
    log = Log(MemoryBackend())
    log.create_topic(PREDICTIONS_TOPIC, PREDICTIONS_SCHEMA, partitions=4)
    rule = JoinRule(window=10)
    with LabelJoiner(log, rule, state_dir=tmp_path, fsync="never") as a:
        assert log.topic("outcomes").partitions == 4  # created alike, when missing
        assert a.unsplit is None
        assert a.slots == [f"partition-{p}" for p in range(4)]
        with LabelJoiner(log, rule, state_dir=tmp_path, fsync="never") as b:
            a.step()
            assert sorted([*a.slots, *b.slots]) == [f"partition-{p}" for p in range(4)]
            assert len(a.slots) == len(b.slots) == 2
        a.step()
        assert len(a.slots) == 4  # b left: a has them all again
    other = Log(MemoryBackend())
    other.create_topic(PREDICTIONS_TOPIC, PREDICTIONS_SCHEMA, partitions=4)
    other.create_topic("outcomes", OUTCOMES_SCHEMA, partitions=2)
    with LabelJoiner(other, rule, state_dir=tmp_path / "x", fsync="never") as c:
        assert c.slots == ["all"]
        assert c.unsplit is not None
        assert "not co-partitioned" in c.unsplit


def test_the_state_of_an_earlier_joiner_is_named_not_overwritten(tmp_path: Path) -> None:
    (tmp_path / "joiner.ckpt").write_bytes(b"one checkpoint for every partition")
    log = Log(MemoryBackend())
    with pytest.raises(ConfigError, match=r"joiner\.ckpt: the state of an earlier label joiner"):
        LabelJoiner(log, JoinRule(window=10), state_dir=tmp_path, fsync="never")
    assert (tmp_path / "joiner.ckpt").read_bytes() == b"one checkpoint for every partition"
