"""A join task and its journal: replaying recorded steps from a snapshot, after any
crash, compaction or takeover, gives exactly what an uninterrupted task gives."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from headwater.errors import CorruptLogError, FencedError
from headwater.labels.join import Example, JoinRule, Late, LoggedPrediction, Outcome
from headwater.labels.journal import Journal
from headwater.labels.task import JoinTask, StepInput

P0 = {"predictions": {0: 0}, "outcomes": {0: 0}}


def pred(rid: str, entity: str, ts: int) -> LoggedPrediction:
    return LoggedPrediction(rid, entity, b"{}", "m", 1, 0.5, "champion", True, ts)


@st.composite
def step_inputs(draw: st.DrawFn) -> tuple[JoinRule, list[StepInput]]:
    """Random steps over one slot of one to three partitions: predictions and outcomes
    (each partition in time order, as a log holds them; an entity's in one partition),
    cut into steps that may or may not have read each partition to its end."""
    rule = JoinRule(window=draw(st.integers(1, 20)),
                    timeout_label=draw(st.sampled_from([0.0, None])))
    k = draw(st.integers(1, 3))
    n = draw(st.integers(0, 14))
    preds = sorted((pred(f"r{i}", draw(st.sampled_from("abc")), draw(st.integers(0, 60)))
                    for i in range(n)), key=lambda p: p.ts)
    outcomes = sorted((Outcome(draw(st.sampled_from([None, *[f"r{i}" for i in range(n + 2)]])),
                               draw(st.sampled_from("abc")),
                               draw(st.sampled_from([None, 0.0, 1.0])),
                               draw(st.integers(0, 90)))
                       for _ in range(draw(st.integers(0, 14)))), key=lambda o: o.ts)
    by_p = {q: [p for p in preds if "abc".index(p.entity) % k == q] for q in range(k)}
    by_o = {q: [o for o in outcomes if "abc".index(o.entity) % k == q] for q in range(k)}
    at_p, at_o = dict.fromkeys(range(k), 0), dict.fromkeys(range(k), 0)
    steps: list[StepInput] = []
    while not steps or any(at_p[q] < len(by_p[q]) or at_o[q] < len(by_o[q]) for q in range(k)):
        read_p, read_o = {}, {}
        for q in range(k):
            i = min(at_p[q] + draw(st.integers(0, 4)), len(by_p[q]))
            j = min(at_o[q] + draw(st.integers(0, 4)), len(by_o[q]))
            read_p[q], read_o[q] = by_p[q][at_p[q]:i], by_o[q][at_o[q]:j]
            at_p[q], at_o[q] = i, j
        p_behind = [q for q in range(k) if at_p[q] < len(by_p[q])]
        o_behind = [q for q in range(k) if at_o[q] < len(by_o[q])]
        done = not p_behind and not o_behind
        clock = None if o_behind else draw(st.one_of(st.none(), st.integers(0, 120)))
        steps.append(StepInput(len(steps) + 1,
                               {"predictions": dict(at_p), "outcomes": dict(at_o)},
                               read_p, read_o, p_behind, o_behind,
                               clock_watermark=200 if done else clock))
    return rule, steps


def uninterrupted(rule: JoinRule, steps: list[StepInput]) -> list[tuple[list[Example],
                                                                         list[Late]]]:
    task = JoinTask(rule, P0)
    out = []
    for step in steps:
        joined = task.advance(step)
        out.append((joined.examples, joined.late))
    return out


@settings(max_examples=150, deadline=None)
@given(step_inputs(), st.lists(st.integers(0, 30), max_size=5), st.integers(40, 400))
def test_a_journal_replayed_after_any_crash_redoes_every_step_exactly(
        stream: tuple[JoinRule, list[StepInput]], crashes: list[int], compact: int) -> None:
    """Steps are recorded, then applied; a crash (a new owner claiming the journal) at
    any step rebuilds the task from the snapshot and the records, and the last recorded
    step's results come out again, identical; compaction at any size changes nothing."""
    rule, steps = stream
    want = uninterrupted(rule, steps)
    encode = msgspec.msgpack.encode
    decode = msgspec.msgpack.Decoder(StepInput).decode
    with tempfile.TemporaryDirectory() as tmp:
        journal = Journal(tmp, fsync="never", compact_bytes=compact)
        journal.claim()
        task = JoinTask(rule, P0)
        journal.compact(0, task.snapshot())
        got: dict[int, tuple[list[Example], list[Late]]] = {}
        for k, step in enumerate(steps):
            journal.append(encode(step))
            if k in crashes:  # killed after the record, before applying it
                journal.close()
                journal = Journal(tmp, fsync="never", compact_bytes=compact)
                snapshot, records = journal.claim()
                assert snapshot is not None
                task = JoinTask.restore(snapshot)
                for record in records:
                    redone = decode(record)
                    joined = task.advance(redone)
                    got[redone.sequence] = (joined.examples, joined.late)
                assert task.sequence == step.sequence
            else:
                joined = task.advance(step)
                got[step.sequence] = (joined.examples, joined.late)
            if journal.due:
                journal.compact(task.sequence, task.snapshot())
        journal.close()
    assert [got[s.sequence] for s in steps] == want


def test_a_quiet_step_changes_nothing_and_is_not_applied() -> None:
    task = JoinTask(JoinRule(window=10, timeout_label=0.0), P0)
    first = StepInput(1, {"predictions": {0: 1}, "outcomes": {0: 0}}, {0: [pred("a", "u", 5)]},
                      {}, [], [], clock_watermark=None)
    assert not task.quiet(first)
    task.advance(first)
    idle = StepInput(2, first.positions, {}, {}, [], [], clock_watermark=14)
    assert task.quiet(idle)  # the window of a ends at 15: nothing is due yet
    due = StepInput(2, first.positions, {}, {}, [], [], clock_watermark=16)
    assert not task.quiet(due)
    assert [(e.request_id, e.source) for e in task.advance(due).examples] == [("a", "timeout")]
    with pytest.raises(ValueError, match="does not follow"):
        task.advance(due)


def test_an_outcome_at_the_latest_prediction_time_waits_for_the_predictions() -> None:
    """Predictions not read to their end: another prediction at the same time may follow,
    so an outcome at that time waits rather than finding nothing to label."""
    task = JoinTask(JoinRule(window=10), P0)
    task.advance(StepInput(1, {"predictions": {0: 1}, "outcomes": {0: 1}},
                           {0: [pred("a", "u", 5)]}, {0: [Outcome("b", "u", 1.0, 5)]},
                           [0], [], clock_watermark=None))
    assert task.held == [Outcome("b", "u", 1.0, 5)]
    joined = task.advance(StepInput(2, {"predictions": {0: 2}, "outcomes": {0: 1}},
                                    {0: [pred("b", "u", 5)]}, {}, [], [],
                                    clock_watermark=None))
    assert [(e.request_id, e.label) for e in joined.examples] == [("b", 1.0)]


def test_a_partition_behind_holds_back_the_outcomes_a_partition_ahead_would_let_go() -> None:
    """Two predictions partitions in one slot: one read to 100, the other only to 10.
    An outcome at 50 may answer a prediction of the second not read yet: it waits, and
    no window closes past 10, until the second is read."""
    two = {"predictions": {0: 0, 1: 0}, "outcomes": {0: 0}}
    task = JoinTask(JoinRule(window=10, timeout_label=0.0), two)
    joined = task.advance(StepInput(
        1, {"predictions": {0: 1, 1: 1}, "outcomes": {0: 1}},
        {0: [pred("a", "u", 100)], 1: [pred("b", "v", 10)]}, {0: [Outcome("c", "w", 1.0, 50)]},
        [1], [], clock_watermark=None))
    assert (joined.examples, joined.late, task.held) == ([], [], [Outcome("c", "w", 1.0, 50)])
    joined = task.advance(StepInput(
        2, {"predictions": {0: 1, 1: 2}, "outcomes": {0: 1}}, {1: [pred("c", "w", 45)]}, {},
        [], [], clock_watermark=None))
    assert [(e.request_id, e.source) for e in joined.examples] == [
        ("b", "timeout"), ("c", "explicit")]


def test_the_journal_cuts_a_torn_record_and_keeps_the_rest(tmp_path: Path) -> None:
    journal = Journal(tmp_path, fsync="never")
    journal.claim()
    journal.append(b"one")
    journal.append(b"two")
    journal.close()
    wal = next(tmp_path.glob("*.wal"))
    with open(wal, "ab") as f:
        f.write(b"HWOB\x00\x00")  # a writer killed in the middle of a record
    again = Journal(tmp_path, fsync="never")
    assert again.claim() == (None, [b"one", b"two"])
    again.append(b"three")
    again.close()
    third = Journal(tmp_path, fsync="never")
    assert third.claim() == (None, [b"one", b"two", b"three"])
    third.close()


def test_a_bad_record_before_good_ones_is_corruption_not_a_torn_tail(tmp_path: Path) -> None:
    journal = Journal(tmp_path, fsync="never")
    journal.claim()
    journal.append(b"one")
    journal.append(b"two")
    journal.close()
    wal = next(tmp_path.glob("*.wal"))
    data = bytearray(wal.read_bytes())
    data[8 + 16] ^= 0xFF  # the first payload byte (after the file and record headers)
    wal.write_bytes(bytes(data))
    with pytest.raises(CorruptLogError):
        Journal(tmp_path, fsync="never").claim()


def test_compaction_replaces_the_records_by_a_snapshot(tmp_path: Path) -> None:
    journal = Journal(tmp_path, fsync="never", compact_bytes=1)
    journal.claim()
    journal.append(b"step 1")
    assert journal.due
    journal.compact(1, b"state after 1")
    assert not journal.due
    journal.append(b"step 2")
    journal.close()
    assert sorted(p.name for p in tmp_path.glob("*.wal")) == [f"{1:020d}.wal"]
    again = Journal(tmp_path, fsync="never")
    assert again.claim() == (b"state after 1", [b"step 2"])
    again.close()


def test_an_owner_claimed_over_can_neither_append_nor_compact(tmp_path: Path) -> None:
    old = Journal(tmp_path, fsync="never")
    old.claim()
    old.append(b"mine")
    new = Journal(tmp_path, fsync="never")
    assert new.claim() == (None, [b"mine"])
    assert (old.epoch, new.epoch) == (1, 2)
    with pytest.raises(FencedError, match="epoch 2"):
        old.append(b"stale")
    with pytest.raises(FencedError):
        old.compact(1, b"stale state")
    new.append(b"next")
    old.close()
    new.close()
    last = Journal(tmp_path, fsync="never")
    assert last.claim() == (None, [b"mine", b"next"])
    last.close()
    assert not any(name.endswith(".tmp") for name in os.listdir(tmp_path))
