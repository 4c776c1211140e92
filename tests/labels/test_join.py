"""The label join: a brute-force oracle, batching invariance, snapshot and restore."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from headwater.labels.join import Example, JoinRule, JoinState, Late, LoggedPrediction, Outcome

END = 1 << 60


def pred(rid: str, entity: str, ts: int, *, served: bool = True,
         version: int = 1) -> LoggedPrediction:
    return LoggedPrediction(rid, entity, b"{}", "m", version, 0.5, "champion", served, ts)


@st.composite
def streams(draw: st.DrawFn) -> tuple[JoinRule, list[LoggedPrediction], list[Outcome]]:
    rule = JoinRule(window=draw(st.integers(1, 20)),
                    timeout_label=draw(st.sampled_from([0.0, None])))
    n = draw(st.integers(0, 12))
    preds = [pred(f"r{i}", draw(st.sampled_from("ab")), draw(st.integers(0, 60)))
             for i in range(n)]
    outcomes = [Outcome(draw(st.sampled_from([f"r{i}" for i in range(n + 2)])),
                        draw(st.sampled_from("ab")),
                        draw(st.sampled_from([None, 0.0, 1.0])), draw(st.integers(0, 90)))
                for _ in range(draw(st.integers(0, 12)))]
    return rule, preds, outcomes


def oracle(rule: JoinRule, preds: list[LoggedPrediction], outcomes: list[Outcome]
           ) -> tuple[set[tuple[str, float, str, int]], int]:
    """Per request: the first outcome (by time, then arrival) inside [t, t + window]
    labels it; none labels it by timeout at t + window."""
    examples = set()
    expired = 0
    ordered = sorted(enumerate(outcomes), key=lambda io: (io[1].ts, io[0]))
    for p in preds:
        first = next((o for _, o in ordered
                      if o.request_id == p.request_id and p.ts <= o.ts <= p.ts + rule.window),
                     None)
        if first is not None:
            label, source = ((rule.positive, "outcome") if first.label is None
                             else (first.label, "explicit"))
            examples.add((p.request_id, label, source, first.ts))
        elif rule.timeout_label is None:
            expired += 1
        else:
            examples.add((p.request_id, rule.timeout_label, "timeout", p.ts + rule.window))
    return examples, expired


def run(rule: JoinRule, preds: list[LoggedPrediction], outcomes: list[Outcome], cuts: list[int],
        delays: list[int] | None = None) -> tuple[list[Example], list[Late], int]:
    """Feed the events in time order (predictions first at equal times), cut into chunks
    at ``cuts``, each chunk's last time as the watermark, then close everything. With
    ``delays``, prediction ``i`` reaches the join ``delays[i]`` after its time (a server
    appending its predictions in batches, after outcomes that answer them)."""
    late_by = delays or [0] * len(preds)
    events: list[tuple[int, int, int, LoggedPrediction | Outcome]] = (
        [(p.ts + late_by[i], 0, i, p) for i, p in enumerate(preds)]
        + [(o.ts, 1, i, o) for i, o in enumerate(outcomes)])
    events.sort(key=lambda e: e[:3])
    state = JoinState(rule)
    examples: list[Example] = []
    late: list[Late] = []
    expired = 0
    bounds = [0, *sorted({c % (len(events) + 1) for c in cuts}), len(events)]
    for lo, hi in itertools.pairwise(bounds):
        chunk = events[lo:hi]
        if not chunk:
            continue
        state.add_predictions([e[3] for e in chunk if isinstance(e[3], LoggedPrediction)])
        done = state.apply([e[3] for e in chunk if isinstance(e[3], Outcome)],
                           watermark=chunk[-1][0])
        examples += done.examples
        late += done.late
        expired += done.expired
        state = JoinState.restore(state.snapshot())  # a restart between any two steps
    done = state.apply([], watermark=END)
    return examples + done.examples, late + done.late, expired + done.expired


@settings(max_examples=300)
@given(streams(), st.lists(st.integers(0, 40), max_size=6))
def test_streaming_join_equals_the_oracle_however_it_is_batched(
        stream: tuple[JoinRule, list[LoggedPrediction], list[Outcome]], cuts: list[int]) -> None:
    rule, preds, outcomes = stream
    examples, late, expired = run(rule, preds, outcomes, cuts)
    want, want_expired = oracle(rule, preds, outcomes)
    assert {(e.request_id, e.label, e.source, e.label_time) for e in examples} == want
    assert len(examples) == len(want)
    assert expired == want_expired
    # nothing is lost: every outcome either labelled a request or is late
    labelled = sum(1 for e in examples if e.source != "timeout")
    assert labelled + len(late) == len(outcomes)


@settings(max_examples=300)
@given(streams(), st.lists(st.integers(0, 40), max_size=6), st.data())
def test_a_prediction_read_after_its_outcome_is_still_joined(
        stream: tuple[JoinRule, list[LoggedPrediction], list[Outcome]], cuts: list[int],
        data: st.DataObject) -> None:
    """A prediction reaching the join up to a window after its time (after the outcome
    that answers it) is labelled as if it had come first."""
    rule, preds, outcomes = stream
    delays = data.draw(st.lists(st.integers(0, rule.window), min_size=len(preds),
                                max_size=len(preds)))
    examples, late, expired = run(rule, preds, outcomes, cuts, delays)
    want, want_expired = oracle(rule, preds, outcomes)
    assert {(e.request_id, e.label, e.source, e.label_time) for e in examples} == want
    assert len(examples) == len(want)
    assert expired == want_expired
    labelled = sum(1 for e in examples if e.source != "timeout")
    assert labelled + len(late) == len(outcomes)


def test_an_outcome_waits_a_window_for_its_prediction_then_is_unmatched() -> None:
    state = JoinState(JoinRule(window=10))
    assert state.apply([Outcome("r1", "u", 1.0, 100)], watermark=100).late == []
    assert state.waiting == 1
    state = JoinState.restore(state.snapshot())  # a restart while it waits
    state.add_predictions([pred("r1", "u", 98)])
    done = state.apply([], watermark=105)
    assert [(e.request_id, e.label, e.label_time) for e in done.examples] == [("r1", 1.0, 100)]
    assert state.waiting == 0
    state.apply([Outcome("r2", "u", 1.0, 120)], watermark=120)
    assert state.apply([], watermark=130).late == []  # r2's prediction may still come
    late = state.apply([], watermark=131).late
    assert [(x.request_id, x.reason) for x in late] == [("r2", "unmatched")]


def test_every_scored_version_of_a_request_gets_the_label() -> None:
    state = JoinState(JoinRule(window=10))
    state.add_predictions([pred("r", "u", 5), pred("r", "u", 5, served=False, version=2)])
    done = state.apply([Outcome("r", "u", 0.0, 9)], watermark=9)
    assert [(e.version, e.served, e.label, e.source) for e in done.examples] == [
        (1, True, 0.0, "explicit"), (2, False, 0.0, "explicit")]


def test_an_outcome_without_request_id_matches_the_entitys_latest_open_prediction() -> None:
    state = JoinState(JoinRule(window=100))
    state.add_predictions([pred("r1", "u", 10), pred("r2", "u", 20), pred("r3", "u", 40),
                           pred("x", "v", 21)])
    done = state.apply([Outcome(None, "u", None, 30)], watermark=30)
    assert [e.request_id for e in done.examples] == ["r2"]
    done = state.apply([Outcome(None, "w", None, 31)], watermark=31)
    assert [(x.entity, x.reason) for x in done.late] == [("w", "unmatched")]


def test_late_reasons() -> None:
    state = JoinState(JoinRule(window=10, timeout_label=None))
    state.add_predictions([pred("a", "u", 0), pred("b", "u", 0), pred("c", "u", 100)])
    done = state.apply([Outcome("a", "u", 1.0, 5), Outcome("a", "u", 1.0, 6),
                        Outcome("c", "u", None, 111), Outcome("c", "u", None, 99)], watermark=20)
    assert [(x.request_id, x.reason) for x in done.late] == [
        ("a", "already_labelled"), ("c", "before_prediction"), ("c", "window_closed")]
    assert done.expired == 2  # b and c: no outcome in time, no timeout label
    done = state.apply([Outcome("b", "u", None, 8), Outcome("zz", "u", None, 9)], watermark=25)
    assert [(x.request_id, x.reason, x.prediction_time) for x in done.late] == [
        ("b", "window_closed", 0), ("zz", "unmatched", None)]


def test_closed_requests_are_forgotten_after_two_windows() -> None:
    state = JoinState(JoinRule(window=10))
    state.add_predictions([pred("a", "u", 0)])
    state.apply([], watermark=11)
    assert state.apply([Outcome("a", "u", None, 12)], 12).late[0].reason == "window_closed"
    state.apply([], watermark=100)
    # forgotten: the outcome waits a window for a prediction of that id, then is unmatched
    assert state.apply([Outcome("a", "u", None, 101)], 101).late == []
    assert state.apply([], 112).late[0].reason == "unmatched"


def test_a_repeated_request_id_labels_the_first_prediction_only() -> None:
    """The server answers a repeated id with its first answer; beyond its memory, a repeat
    is logged again, and the joiner keeps the first prediction of the id, as served."""
    state = JoinState(JoinRule(window=10))
    first = LoggedPrediction("r", "u", b'{"x":1.0}', "m", 1, 0.25, "champion", True, 5)
    again = LoggedPrediction("r", "u", b'{"x":2.0}', "m", 2, 0.75, "champion", True, 6)
    shadow_again = LoggedPrediction("r", "u", b'{"x":2.0}', "m", 3, 0.5, "challenger", False, 6)
    state.add_predictions([first, again, shadow_again])
    done = state.apply([Outcome("r", "u", 1.0, 8)], watermark=8)
    assert [(e.features, e.version, e.score, e.label) for e in done.examples] == [
        (b'{"x":1.0}', 1, 0.25, 1.0)]
    state.add_predictions([again])  # after the request closed
    assert state.repeated == 2
    restored = JoinState.restore(state.snapshot())
    assert restored.repeated == 2


def test_a_logged_prediction_keeps_its_propensity_apart_from_its_score() -> None:
    from headwater.labels.join import predictions_of
    from headwater.log.system import PREDICTIONS, PredictionRow

    batch = PREDICTIONS.encode([PredictionRow("r", "u", b"{}", "m", 1, 0.75, "challenger",
                                              True, (), 5, propensity=0.25)])
    [row] = predictions_of(batch)
    assert (row.score, row.propensity, row.arm) == (0.75, 0.25, "challenger")
